"""The Secrets section of an app's Settings: names and dates, set/replace/delete, values never shown."""
import uuid

from tests.support.apps import site  # noqa: F401  (fixture)


def secret_names(site):
    return [s["name"] for s in site.api.get(f"/api/v1/admin/apps/{site.app['id']}/secrets").json()["secrets"]]


def test_set_replace_and_delete_a_secret(dash, site):
    value = "dash-" + uuid.uuid4().hex
    settings = f"/admin/apps/{site.slug}/settings"
    created = dash.post(f"{settings}/secrets", {"name": "WEBHOOK_KEY", "value": value})
    assert created.status_code == 303, created.text
    assert secret_names(site) == ["WEBHOOK_KEY"]
    page = dash.get(settings)
    assert page.status_code == 200
    assert "WEBHOOK_KEY" in page.text and value not in page.text
    replaced = dash.post(f"{settings}/secrets", {"name": "WEBHOOK_KEY", "value": value + "x"})
    assert replaced.status_code == 303
    assert secret_names(site) == ["WEBHOOK_KEY"]
    deleted = dash.post(f"{settings}/secrets/WEBHOOK_KEY/delete")
    assert deleted.status_code == 303
    assert secret_names(site) == []


def test_a_bad_name_is_shown_next_to_the_field(dash, site):
    response = dash.post(f"/admin/apps/{site.slug}/settings/secrets", {"name": "lower-case", "value": "v"})
    assert response.status_code == 422
    assert "Upper-case letters" in response.text
    assert secret_names(site) == []


def test_the_forms_need_csrf(dash, site):
    response = dash.post(f"/admin/apps/{site.slug}/settings/secrets", {"name": "NO_CSRF", "value": "v"}, csrf=False)
    assert response.status_code in (400, 422)
    assert secret_names(site) == []


def test_a_viewer_sees_names_and_no_forms(login_as, site):
    site.api.put(f"/api/v1/admin/apps/{site.app['id']}/secrets/VISIBLE", json={"value": "hidden-value"})
    viewer = login_as("viewer")
    page = viewer.get(f"/admin/apps/{site.slug}/settings")
    assert page.status_code == 200
    assert "VISIBLE" in page.text and "hidden-value" not in page.text
    assert "Set secret" not in page.text
    refused = viewer.post(f"/admin/apps/{site.slug}/settings/secrets", {"name": "NOPE", "value": "v"})
    assert refused.status_code == 403
    assert secret_names(site) == ["VISIBLE"]
