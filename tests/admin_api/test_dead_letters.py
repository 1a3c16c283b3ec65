"""docs/api.md §9: the dead letters API — list, show, replay, discard, bulk replay, and every error."""
import pytest

from tests.outbox.conftest import add_trigger, dead_letters, kv_items, kv_put, wait_for
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)

FAILING = 'error("no luck for " .. event.key)\n'
# Fails until the key "fixed" is set: replays after the fix succeed.
FIXABLE = 'if not kv.get("fixed") then error("not fixed yet") end\nkv.set("done/" .. event.key, ctx.attempt)\n'
ONE_ATTEMPT = {"max_attempts": 1, "backoff": "constant", "base_delay_ms": 0, "max_delay_ms": 0, "jitter": 0}


def make_dead_letters(site, count=1, source=FAILING, prefix="dl"):
    """Make ``count`` dead letters of a failing kv trigger; return them oldest first."""
    script = site.script(source)
    trigger = add_trigger(site, "kv", script, key_glob=f"{prefix}/*", retry=ONE_ATTEMPT)
    before = {d["id"] for d in dead_letters(site, open=False)}
    for i in range(count):
        kv_put(site, f"{prefix}/{i}", {"n": i})
    made = wait_for(
        lambda: (lambda new: new if len(new) == count else None)(
            [d for d in dead_letters(site, open=False) if d["id"] not in before]
        ),
        what=f"{count} dead letters",
    )
    return sorted(made, key=lambda d: d["id"]), trigger, script


def test_a_dead_letter_has_the_documented_shape(site):
    [dead], trigger, script = make_dead_letters(site)
    assert dead["app_id"] == site.app["id"]
    assert dead["source"] == "kv" and dead["trigger_id"] == trigger["id"] and dead["script_id"] == script["id"]
    assert dead["event"]["kind"] == "kv" and dead["event"]["op"] == "set"
    assert dead["event"]["key"] == "dl/0" and dead["event"]["value"] == {"n": 0}
    assert dead["attempts"] == 1
    assert dead["last_error"]["status"] == "script_error"
    assert "no luck for dl/0" in dead["last_error"]["message"]
    assert dead["resolution"] is None and dead["resolved_at"] is None
    assert dead["created_at"].endswith("Z")
    shown = site.api.get(f"/api/v1/admin/dead-letters/{dead['id']}")
    assert shown.status_code == 200 and shown.json() == dead


def test_listing_shows_open_ones_newest_first_and_all_with_open_false(site):
    made, _, _ = make_dead_letters(site, 3)
    discarded = site.api.post(f"/api/v1/admin/dead-letters/{made[0]['id']}:discard")
    assert discarded.status_code == 200
    open_ids = [d["id"] for d in dead_letters(site)]
    assert open_ids == [made[2]["id"], made[1]["id"]]
    assert [d["id"] for d in dead_letters(site, open=False)] == [d["id"] for d in reversed(made)]
    url = f"/api/v1/admin/apps/{site.app['id']}/dead-letters"
    first = site.api.get(url, params={"open": "false", "limit": 2}).json()
    second = site.api.get(url, params={"open": "false", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["id"] for d in first["dead_letters"] + second["dead_letters"]] == [d["id"] for d in reversed(made)]
    assert second["next_cursor"] is None


def test_an_invalid_open_parameter_answers_422(site):
    response = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/dead-letters", params={"open": "maybe"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "open"


def test_replay_queues_the_same_event_again_once(site):
    [dead], _, script = make_dead_letters(site)
    response = site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:replay")
    assert response.status_code == 200, response.text
    replayed = response.json()
    assert replayed["resolution"] == "replayed" and replayed["resolved_at"]
    assert dead["id"] not in [d["id"] for d in dead_letters(site)]
    # The event runs again with the same event id and a fresh attempt count, fails
    # again, and becomes a new open dead letter of the same event.
    again = wait_for(lambda: dead_letters(site), what="the replayed event to fail again")
    assert again[0]["id"] != dead["id"]
    assert again[0]["event_id"] == dead["event_id"] and again[0]["attempts"] == 1
    runs = [e for e in site.api.get(
        f"/api/v1/admin/apps/{site.app['id']}/executions", params={"script_id": script["id"]}
    ).json()["executions"]]
    assert {r["event_id"] for r in runs} == {dead["event_id"]}
    assert [r["attempt"] for r in runs] == [1, 1]

    conflict = site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:replay")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "already_resolved"


def test_discard_and_its_conflicts(site):
    [dead], _, _ = make_dead_letters(site)
    response = site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:discard")
    assert response.status_code == 200
    assert response.json()["resolution"] == "discarded"
    assert site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:discard").status_code == 409
    assert site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:replay").status_code == 409
    assert dead_letters(site) == []


def test_bulk_replay_of_listed_ids_and_of_all(site, other_site):
    made, _, _ = make_dead_letters(site, 3, source=FIXABLE)
    [foreign], _, _ = make_dead_letters(other_site)
    kv_put(site, "fixed", True)
    url = f"/api/v1/admin/apps/{site.app['id']}/dead-letters:replay"
    # Only this app's open ones count: the other app's id is not visible here.
    response = site.api.post(url, json={"ids": [made[0]["id"], foreign["id"]]})
    assert response.status_code == 200 and response.json() == {"replayed": 1}
    assert site.api.get(f"/api/v1/admin/dead-letters/{foreign['id']}").json()["resolution"] is None
    response = site.api.post(url)
    assert response.json() == {"replayed": 2}
    statuses = {d["id"]: d["resolution"] for d in dead_letters(site, open=False) if d["id"] in {m["id"] for m in made}}
    assert statuses == {m["id"]: "replayed" for m in made}
    assert site.api.post(url, json={"ids": []}).json() == {"replayed": 0}
    done = wait_for(lambda: len(kv_items(site, "done/")) == 3 and kv_items(site, "done/"), what="the replays to run")
    assert done == {"done/dl/0": 1, "done/dl/1": 1, "done/dl/2": 1}
    assert dead_letters(site) == []


@pytest.mark.parametrize("body", [{"ids": "all"}, {"ids": [1, "2"]}, {"ids": [True]}])
def test_bulk_replay_with_bad_ids_answers_422(site, body):
    response = site.api.post(f"/api/v1/admin/apps/{site.app['id']}/dead-letters:replay", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == "ids"


def test_bulk_replay_with_a_non_object_body_answers_400(site):
    response = site.api.post(f"/api/v1/admin/apps/{site.app['id']}/dead-letters:replay", json=[1])
    assert response.status_code == 400


def test_unknown_dead_letters_answer_404(site):
    for response in (
        site.api.get("/api/v1/admin/dead-letters/999999999"),
        site.api.post("/api/v1/admin/dead-letters/999999999:replay"),
        site.api.post("/api/v1/admin/dead-letters/999999999:discard"),
        site.api.get("/api/v1/admin/apps/no-such-app/dead-letters"),
        site.api.post("/api/v1/admin/apps/no-such-app/dead-letters:replay"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_viewers_read_but_cannot_act(site, make_user):
    [dead], _, _ = make_dead_letters(site)
    _, viewer = make_user("viewer")
    assert viewer.get(f"/api/v1/admin/apps/{site.app['id']}/dead-letters").status_code == 200
    assert viewer.get(f"/api/v1/admin/dead-letters/{dead['id']}").status_code == 200
    for response in (
        viewer.post(f"/api/v1/admin/dead-letters/{dead['id']}:replay"),
        viewer.post(f"/api/v1/admin/dead-letters/{dead['id']}:discard"),
        viewer.post(f"/api/v1/admin/apps/{site.app['id']}/dead-letters:replay"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["capability"] == "dead_letters.manage"
    assert site.api.get(f"/api/v1/admin/dead-letters/{dead['id']}").json()["resolution"] is None


def test_replaying_when_the_script_is_gone_answers_409(site):
    [dead], trigger, script = make_dead_letters(site)
    assert site.api.delete(f"/api/v1/admin/triggers/{trigger['id']}").status_code == 204
    assert site.api.delete(f"/api/v1/admin/scripts/{script['id']}").status_code == 204
    response = site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:replay")
    assert response.status_code == 409 and response.json()["error"]["code"] == "script_deleted"
    assert site.api.get(f"/api/v1/admin/dead-letters/{dead['id']}").json()["resolution"] is None


def test_deleting_the_app_removes_its_dead_letters(site):
    [dead], _, _ = make_dead_letters(site)
    assert site.api.delete(f"/api/v1/admin/apps/{site.app['id']}").status_code == 204
    assert site.api.get(f"/api/v1/admin/dead-letters/{dead['id']}").status_code == 404
