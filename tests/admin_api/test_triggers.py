"""docs/api.md §9: the triggers API — create per kind, list, show, change, delete, and every error."""
import pytest

from tests.support.apps import other_site, site  # noqa: F401  (fixtures)

DEFAULT_RETRY = {"max_attempts": 5, "backoff": "exponential", "base_delay_ms": 1000, "max_delay_ms": 300000, "jitter": 0.2}


def triggers_url(site, kind=None):
    return f"/api/v1/admin/apps/{site.app['id']}/triggers" + (f"/{kind}" if kind else "")


def create(site, kind, **body):
    return site.api.post(triggers_url(site, kind), json=body)


def test_create_a_kv_trigger(site, admin):
    script = site.script()
    me = admin.get("/api/v1/auth/me").json()["user"]
    response = create(site, "kv", script_id=script["id"], key_glob="orders/*", ops=["set"])
    assert response.status_code == 201, response.text
    trigger = response.json()
    assert trigger["kind"] == "kv" and trigger["app_id"] == site.app["id"]
    assert trigger["script_id"] == script["id"]
    assert trigger["key_glob"] == "orders/*" and trigger["ops"] == ["set"]
    assert trigger["enabled"] is True
    assert trigger["retry"] == DEFAULT_RETRY
    assert trigger["registered_by"] == me["id"]
    assert isinstance(trigger["id"], int) and trigger["created_at"].endswith("Z")


def test_create_a_docs_trigger_with_a_retry_policy(site):
    script = site.script()
    retry = {"max_attempts": 2, "backoff": "linear", "base_delay_ms": 10, "max_delay_ms": 100, "jitter": 0}
    response = create(site, "docs", script_id=script["id"], collection_glob="orders", ops=[], retry=retry)
    assert response.status_code == 201, response.text
    trigger = response.json()
    assert trigger["kind"] == "docs" and trigger["collection_glob"] == "orders"
    assert trigger["ops"] == [] and trigger["retry"] == retry
    assert "key_glob" not in trigger


def test_create_a_dead_letter_trigger(site):
    script = site.script()
    response = create(site, "dead_letter", script_id=script["id"])
    assert response.status_code == 201, response.text
    trigger = response.json()
    assert trigger["kind"] == "dead_letter" and trigger["script_id"] == script["id"]
    assert "ops" not in trigger and trigger["retry"] is None


def test_list_show_and_page_the_app_triggers(site, other_site):
    script = site.script()
    made = [create(site, "kv", script_id=script["id"], key_glob=f"k{i}").json() for i in range(3)]
    other_site.api.post(triggers_url(other_site, "kv"), json={"script_id": other_site.script()["id"], "key_glob": "*"})
    listed = site.api.get(triggers_url(site)).json()
    assert [t["id"] for t in listed["triggers"]] == [t["id"] for t in made]
    assert listed["next_cursor"] is None
    first = site.api.get(triggers_url(site), params={"limit": 2}).json()
    second = site.api.get(triggers_url(site), params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [t["id"] for t in first["triggers"] + second["triggers"]] == [t["id"] for t in made]
    shown = site.api.get(f"/api/v1/admin/triggers/{made[1]['id']}")
    assert shown.status_code == 200 and shown.json() == made[1]


def test_listing_by_former_slug_redirects(site):
    old = site.slug
    renamed = site.api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": old + "-new"})
    assert renamed.status_code == 200, renamed.text
    response = site.api.get(f"/api/v1/admin/apps/{old}/triggers")
    assert response.status_code == 308
    assert response.headers["Location"] == f"/api/v1/admin/apps/{old}-new/triggers"


@pytest.mark.parametrize(
    "kind, body, field",
    [
        ("kv", {"key_glob": ""}, "key_glob"),
        ("kv", {}, "key_glob"),
        ("kv", {"key_glob": 5}, "key_glob"),
        ("docs", {"collection_glob": ""}, "collection_glob"),
        ("kv", {"key_glob": "*", "ops": ["insert"]}, "ops"),
        ("kv", {"key_glob": "*", "ops": "set"}, "ops"),
        ("docs", {"collection_glob": "*", "ops": ["set"]}, "ops"),
        ("docs", {"collection_glob": "*", "ops": [1]}, "ops"),
        ("kv", {"key_glob": "*", "retry": {"max_attempts": 0}}, "retry.max_attempts"),
        ("kv", {"key_glob": "*", "retry": {"backoff": "random"}}, "retry.backoff"),
        ("kv", {"key_glob": "*", "retry": {"bogus": 1}}, "retry.bogus"),
        ("kv", {"key_glob": "*", "collection_glob": "x"}, "collection_glob"),
        ("dead_letter", {"retry": {}}, "retry"),
        ("kv", {"key_glob": "*", "enabled": "yes"}, "enabled"),
    ],
)
def test_invalid_fields_answer_422(site, kind, body, field):
    script = site.script()
    response = create(site, kind, script_id=script["id"], **body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert site.api.get(triggers_url(site)).json()["triggers"] == []  # nothing half-written


@pytest.mark.parametrize("script_id", [None, "1", 10**9, True])
def test_a_missing_or_unknown_script_answers_422(site, script_id):
    response = create(site, "kv", script_id=script_id, key_glob="*")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "script_id"


def test_a_script_of_another_app_answers_422(site, other_site):
    foreign = other_site.script()
    response = create(site, "kv", script_id=foreign["id"], key_glob="*")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "script_id"


def test_bad_bodies_and_unknown_apps(site):
    url = triggers_url(site, "kv")
    assert site.api.post(url, data="{", headers={"Content-Type": "application/json"}).json()["error"]["code"] == "bad_request"
    assert site.api.post(url, json=[1]).status_code == 400
    assert site.api.post(triggers_url(site, "http"), json={}).status_code == 404
    assert site.api.post("/api/v1/admin/apps/no-such-app/triggers/kv", json={}).status_code == 404
    assert site.api.get("/api/v1/admin/triggers/999999999").status_code == 404


def test_patch_changes_each_field(site):
    first, second = site.script(), site.script()
    trigger = create(site, "kv", script_id=first["id"], key_glob="a*", ops=["set"]).json()
    url = f"/api/v1/admin/triggers/{trigger['id']}"
    response = site.api.patch(url, json={"enabled": False, "key_glob": "b?", "ops": ["delete"], "script_id": second["id"]})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["enabled"], changed["key_glob"], changed["ops"], changed["script_id"]) == (False, "b?", ["delete"], second["id"])
    # A partial retry policy changes only what it names.
    changed = site.api.patch(url, json={"retry": {"max_attempts": 2}}).json()
    assert changed["retry"] == {**DEFAULT_RETRY, "max_attempts": 2}
    changed = site.api.patch(url, json={"retry": {"backoff": "constant"}}).json()
    assert changed["retry"] == {**DEFAULT_RETRY, "max_attempts": 2, "backoff": "constant"}
    assert site.api.get(url).json() == changed


@pytest.mark.parametrize(
    "body, field",
    [
        ({"key_glob": ""}, "key_glob"),
        ({"ops": ["update"]}, "ops"),
        ({"retry": {"jitter": 2}}, "retry.jitter"),
        ({"enabled": None}, "enabled"),
        ({"collection_glob": "x"}, "collection_glob"),
        ({"kind": "docs"}, "kind"),
    ],
)
def test_invalid_patches_answer_422_and_change_nothing(site, body, field):
    trigger = create(site, "kv", script_id=site.script()["id"], key_glob="keep").json()
    url = f"/api/v1/admin/triggers/{trigger['id']}"
    response = site.api.patch(url, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert site.api.get(url).json() == trigger


def test_patch_to_a_script_of_another_app_answers_422(site, other_site):
    trigger = create(site, "kv", script_id=site.script()["id"], key_glob="*").json()
    response = site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"script_id": other_site.script()["id"]})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "script_id"


def test_delete_a_trigger(site):
    trigger = create(site, "dead_letter", script_id=site.script()["id"]).json()
    url = f"/api/v1/admin/triggers/{trigger['id']}"
    assert site.api.delete(url).status_code == 204
    assert site.api.get(url).status_code == 404
    assert site.api.delete(url).status_code == 404
    assert site.api.patch(url, json={"enabled": False}).status_code == 404


def test_a_script_in_use_by_a_trigger_cannot_be_deleted(site):
    script = site.script()
    trigger = create(site, "kv", script_id=script["id"], key_glob="*").json()
    response = site.api.delete(f"/api/v1/admin/scripts/{script['id']}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "script_in_use" and error["triggers"] == [trigger["id"]] and error["routes"] == []
    assert site.api.delete(f"/api/v1/admin/triggers/{trigger['id']}").status_code == 204
    assert site.api.delete(f"/api/v1/admin/scripts/{script['id']}").status_code == 204


def test_deleting_the_app_removes_its_triggers(site):
    trigger = create(site, "kv", script_id=site.script()["id"], key_glob="*").json()
    assert site.api.delete(f"/api/v1/admin/apps/{site.app['id']}").status_code == 204
    assert site.api.get(f"/api/v1/admin/triggers/{trigger['id']}").status_code == 404


def test_viewers_read_but_cannot_manage(site, make_user):
    trigger = create(site, "kv", script_id=site.script()["id"], key_glob="*").json()
    _, viewer = make_user("viewer")
    assert viewer.get(triggers_url(site)).status_code == 200
    assert viewer.get(f"/api/v1/admin/triggers/{trigger['id']}").status_code == 200
    for response in (
        viewer.post(triggers_url(site, "kv"), json={"script_id": trigger["script_id"], "key_glob": "*"}),
        viewer.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False}),
        viewer.delete(f"/api/v1/admin/triggers/{trigger['id']}"),
    ):
        assert response.status_code == 403
        assert response.json()["error"] == {**response.json()["error"], "code": "forbidden", "capability": "triggers.manage"}
    assert site.api.get(f"/api/v1/admin/triggers/{trigger['id']}").json()["enabled"] is True


def test_a_developer_registers_triggers_as_themself(site, make_user):
    user, developer = make_user("developer")
    response = developer.post(triggers_url(site, "kv"), json={"script_id": site.script()["id"], "key_glob": "*"})
    assert response.status_code == 201
    assert response.json()["registered_by"] == user["id"]


def test_calls_without_a_token_answer_401(site, anonymous):
    assert anonymous.get(triggers_url(site)).status_code == 401
    assert anonymous.post(triggers_url(site, "kv"), json={}).status_code == 401
