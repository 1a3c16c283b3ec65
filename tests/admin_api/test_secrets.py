"""docs/api.md §12: secrets are write-only, encrypted at rest, per app, behind secrets.manage."""
import uuid
from pathlib import Path

import pytest

from picloud.db import db
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)
from tests.support.databases import backend


def secrets_url(site, name=None):
    base = f"/api/v1/admin/apps/{site.app['id']}/secrets"
    return base if name is None else f"{base}/{name}"


def put_secret(site, name, value, api=None):
    response = (api or site.api).put(secrets_url(site, name), json={"value": value})
    assert response.status_code == 200, response.text
    return response.json()


def test_put_answers_name_and_dates_never_the_value(site):
    value = "sk-" + uuid.uuid4().hex
    created = put_secret(site, "API_KEY", value)
    assert set(created) == {"name", "created_at", "updated_at"}
    assert created["name"] == "API_KEY" and created["created_at"].endswith("Z")
    replaced = put_secret(site, "API_KEY", value + "-2")
    assert replaced["created_at"] == created["created_at"]
    assert replaced["updated_at"] >= created["updated_at"]
    listed = site.api.get(secrets_url(site))
    assert listed.status_code == 200
    assert listed.json() == {"secrets": [replaced]}
    assert value not in listed.text


def test_no_endpoint_reads_a_value_back(site):
    value = "never-shown-" + uuid.uuid4().hex
    put_secret(site, "TOKEN", value)
    assert site.api.get(secrets_url(site, "TOKEN")).status_code == 405
    for path in (secrets_url(site), f"/api/v1/admin/apps/{site.app['id']}", f"/api/v1/admin/apps/{site.app['id']}/bundle"):
        assert value not in site.api.get(path).text


def test_delete_answers_204_then_404(site):
    put_secret(site, "GONE", "x")
    assert site.api.delete(secrets_url(site, "GONE")).status_code == 204
    assert site.api.get(secrets_url(site)).json() == {"secrets": []}
    missing = site.api.delete(secrets_url(site, "GONE"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", ["lower", "1DIGIT", "WITH-DASH", "A" * 65, "ÜBER"])
def test_bad_names_are_422(site, name):
    response = site.api.put(secrets_url(site, name), json={"value": "x"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "name"
    assert site.api.get(secrets_url(site)).json() == {"secrets": []}


@pytest.mark.parametrize("body", [{"value": 5}, {"value": None}, {}, {"value": "x" * (64 * 1024 + 1)}, {"value": "a\u0000b"}])
def test_bad_values_are_422(site, body):
    response = site.api.put(secrets_url(site, "NAME"), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "value"
    assert site.api.get(secrets_url(site)).json() == {"secrets": []}


def test_a_value_of_64_kib_is_accepted(site):
    put_secret(site, "BIG", "é" * (32 * 1024))


def test_unknown_fields_and_bad_json(site):
    assert site.api.put(secrets_url(site, "N"), json={"value": "x", "other": 1}).status_code == 422
    bad = site.api.put(secrets_url(site, "N"), data=b"{", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400


def test_viewer_lists_names_but_cannot_write(site, make_user):
    put_secret(site, "SEEN", "value-" + uuid.uuid4().hex)
    _, viewer = make_user("viewer")
    assert [s["name"] for s in viewer.get(secrets_url(site)).json()["secrets"]] == ["SEEN"]
    for response in (viewer.put(secrets_url(site, "SEEN"), json={"value": "y"}), viewer.delete(secrets_url(site, "SEEN"))):
        assert response.status_code == 403
        assert response.json()["error"]["capability"] == "secrets.manage"


def test_developer_manages_secrets(site, make_user):
    _, developer = make_user("developer")
    put_secret(site, "DEV", "v", api=developer)
    assert developer.delete(secrets_url(site, "DEV")).status_code == 204


def test_apps_do_not_see_each_others_secrets(site, other_site):
    put_secret(site, "MINE", "mine")
    assert other_site.api.get(secrets_url(other_site)).json() == {"secrets": []}
    assert site.api.delete(secrets_url(other_site, "MINE")).status_code == 404
    assert [s["name"] for s in site.api.get(secrets_url(site)).json()["secrets"]] == ["MINE"]


def test_unknown_app_is_404(admin):
    assert admin.get("/api/v1/admin/apps/no-such-app-x/secrets").status_code == 404
    assert admin.put("/api/v1/admin/apps/no-such-app-x/secrets/A", json={"value": "v"}).status_code == 404


def test_deleting_the_app_deletes_its_secrets(site, database):
    put_secret(site, "DOOMED", "doomed")
    assert site.api.delete(f"/api/v1/admin/apps/{site.app['id']}").status_code == 204
    rows = db.execute_sql("SELECT COUNT(*) FROM app_secrets WHERE app_id = %s" % int(site.app["id"])).fetchone()
    assert rows[0] == 0


def test_values_are_encrypted_at_rest(site, database, settings):
    plaintext = "plain-" + uuid.uuid4().hex
    put_secret(site, "AT_REST", plaintext)
    rows = db.execute_sql("SELECT name, token FROM app_secrets").fetchall()
    assert any(name == "AT_REST" for name, _ in rows)
    assert all(plaintext not in token for _, token in rows)
    if backend() == "sqlite":
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                assert plaintext.encode() not in file.read_bytes()
