"""docs/api.md §11: an app's optional egress_hosts allow-list, set with PATCH (apps.manage)."""
import pytest

from tests.support.apps import site  # noqa: F401  (fixture)


def app_url(site):
    return f"/api/v1/admin/apps/{site.app['id']}"


def test_new_apps_call_any_public_host(site):
    assert site.app["egress_hosts"] is None


def test_patch_sets_normalised_hosts_and_null_clears_them(site):
    response = site.api.patch(app_url(site), json={"egress_hosts": ["API.Example.com.", "*.hooks.test", "api.example.com"]})
    assert response.status_code == 200, response.text
    assert response.json()["egress_hosts"] == ["api.example.com", "*.hooks.test"]
    assert site.api.get(app_url(site)).json()["egress_hosts"] == ["api.example.com", "*.hooks.test"]
    cleared = site.api.patch(app_url(site), json={"egress_hosts": None})
    assert cleared.json()["egress_hosts"] is None


@pytest.mark.parametrize(
    "value, field",
    [("api.example.com", "egress_hosts"), ([5], "egress_hosts[0]"), (["ok.test", "http://x.test/"], "egress_hosts[1]"),
     (["host:443"], "egress_hosts[0]"), (["a" * 300], "egress_hosts[0]")],
)
def test_bad_lists_are_422_and_change_nothing(site, value, field):
    response = site.api.patch(app_url(site), json={"egress_hosts": value})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert site.api.get(app_url(site)).json()["egress_hosts"] is None


def test_a_developer_cannot_set_them(site, make_user):
    _, developer = make_user("developer")
    response = developer.patch(app_url(site), json={"egress_hosts": ["x.test"]})
    assert response.status_code == 403 and response.json()["error"]["capability"] == "apps.manage"
