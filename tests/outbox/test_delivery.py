"""docs/api.md §9 end to end: triggered runs, their event and ctx, retries, dead letters, handlers, depth."""
from tests.outbox.conftest import FAST_RETRY, add_trigger, dead_letters, executions, kv_get, kv_items, kv_put, wait_for

RECORD_CTX = """
kv.set("seen/" .. event.key, {
  event = event, source = ctx.source, event_id = ctx.event_id, attempt = ctx.attempt,
  depth = ctx.trigger_depth, principal = ctx.principal, execution_id = ctx.execution_id,
})
"""


def test_a_kv_trigger_runs_with_the_event_as_its_registrant(site, admin):
    me = admin.get("/api/v1/auth/me").json()["user"]
    trigger = add_trigger(site, "kv", site.script(RECORD_CTX), key_glob="in/*")
    kv_put(site, "in/1", {"n": 1})
    seen = wait_for(lambda: kv_get(site, "seen/in/1"), what="the triggered run")
    event = seen["event"]
    assert (event["kind"], event["op"], event["key"], event["value"]) == ("kv", "set", "in/1", {"n": 1})
    assert "prev_value" not in event and event["at"].endswith("Z")  # nil: the key was new
    assert seen["source"] == "kv" and seen["attempt"] == 1 and seen["depth"] == 1
    assert seen["principal"] == {"user_id": me["id"], "username": me["username"]}
    [run] = wait_for(lambda: [e for e in executions(site, source="kv") if e["status"] == "ok"], what="the log")
    assert run["id"] == seen["execution_id"] and run["event_id"] == seen["event_id"]
    assert run["trigger_id"] == trigger["id"] and run["trigger_depth"] == 1 and run["attempt"] == 1


def test_ops_and_globs_select_the_changes_that_fire(site):
    script = site.script('kv.incr("count/" .. event.op .. "/" .. event.key)\n')
    add_trigger(site, "kv", script, key_glob="only-delete/*", ops=["delete"])
    add_trigger(site, "kv", script, key_glob="user:?", ops=[])
    for key in ("only-delete/a", "user:1", "user:12", "User:1", "other"):
        kv_put(site, key, 1)
    deleted = site.api.delete(f"/api/v1/admin/apps/{site.app['id']}/kv/only-delete%2Fa")
    assert deleted.status_code in (200, 204)
    wait_for(lambda: len(kv_items(site, "count/")) >= 2, what="the triggered runs")
    wait_for(lambda: not site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params={"status": "queued"}).json()["executions"])
    assert kv_items(site, "count/") == {"count/set/user:1": 1, "count/delete/only-delete/a": 1}


def test_a_docs_trigger_gets_the_document_change(site):
    script = site.script('kv.set("doc/" .. event.op, {id = event.id, data = event.data, prev = event.prev_data, coll = event.collection})\n')
    add_trigger(site, "docs", script, collection_glob="ord*", ops=["insert", "update"])
    url = f"/api/v1/admin/apps/{site.app['id']}/docs"
    assert site.api.post(f"{url}/orders", json={"_id": "o1", "total": 5}).status_code == 201
    assert site.api.put(f"{url}/orders/o1", json={"total": 7}).status_code == 200
    assert site.api.post(f"{url}/archive", json={"_id": "a1"}).status_code == 201
    inserted = wait_for(lambda: kv_get(site, "doc/insert"))
    updated = wait_for(lambda: kv_get(site, "doc/update"))
    assert inserted["coll"] == "orders" and inserted["id"] == "o1" and inserted["data"]["total"] == 5
    assert updated["data"]["total"] == 7 and updated["prev"]["total"] == 5


def test_failures_are_retried_with_the_same_event_id_until_success(site):
    # Fails on the first two attempts, succeeds on the third.
    script = site.script('if ctx.attempt < 3 then error("attempt " .. ctx.attempt) end\nkv.set("ok/" .. event.key, ctx.event_id)\n')
    add_trigger(site, "kv", script, key_glob="flaky", retry=FAST_RETRY)
    kv_put(site, "flaky", 1)
    event_id = wait_for(lambda: kv_get(site, "ok/flaky"), what="the third attempt")
    runs = wait_for(lambda: (lambda r: r if len(r) == 3 else None)(
        [e for e in executions(site, script_id=script["id"]) if e["status"] != "queued"]))
    assert sorted((r["attempt"], r["status"]) for r in runs) == [(1, "script_error"), (2, "script_error"), (3, "ok")]
    assert {r["event_id"] for r in runs} == {event_id}
    assert len({r["id"] for r in runs}) == 3  # each attempt is its own execution
    assert dead_letters(site) == []


def test_the_last_failure_dead_letters_and_fires_the_handler_once(site):
    failing = site.script('error("broken")\n')
    trigger = add_trigger(site, "kv", failing, key_glob="doomed", retry=FAST_RETRY)
    handler = site.script('kv.set("handled", {dl = event.dead_letter_id, kind = event.kind, source = event.source, '
                          'attempts = event.attempts, key = event.original_event.key, error = event.last_error.message, '
                          'trigger = event.trigger_id, script = event.script_id, depth = ctx.trigger_depth})\n')
    add_trigger(site, "dead_letter", handler)
    kv_put(site, "doomed", "x")
    handled = wait_for(lambda: kv_get(site, "handled"), what="the dead-letter handler")
    [dead] = dead_letters(site, open=False)
    assert handled["dl"] == dead["id"] and handled["kind"] == "dead_letter" and handled["source"] == "kv"
    assert handled["attempts"] == 3 and handled["key"] == "doomed" and "broken" in handled["error"]
    assert handled["trigger"] == trigger["id"] and handled["script"] == failing["id"]
    assert handled["depth"] == 2
    dead = wait_for(lambda: (lambda d: d if d["resolution"] == "handled" else None)(
        site.api.get(f"/api/v1/admin/dead-letters/{dead['id']}").json()))
    assert dead["attempts"] == 3 and dead["resolved_at"]
    assert dead_letters(site) == []  # handled is resolved
    runs = executions(site, source="dead_letter")
    assert len(runs) == 1 and runs[0]["status"] == "ok"


def test_a_failing_handler_marks_handler_failed_and_is_neither_retried_nor_dead_lettered(site):
    add_trigger(site, "kv", site.script('error("first")\n'), key_glob="bad", retry={**FAST_RETRY, "max_attempts": 1})
    add_trigger(site, "dead_letter", site.script('error("the handler fails too")\n'))
    kv_put(site, "bad", 1)
    [dead] = wait_for(lambda: [d for d in dead_letters(site, open=False) if d["resolution"] == "handler_failed"],
                      what="handler_failed")
    runs = wait_for(lambda: executions(site, source="dead_letter"))
    assert [r["status"] for r in runs] == ["script_error"] and runs[0]["attempt"] == 1
    # No dead letter of the handler's own failure, and nothing more runs.
    wait_for(lambda: not executions(site, status="queued"))
    assert [d["id"] for d in dead_letters(site, open=False)] == [dead["id"]]
    assert len(executions(site, source="dead_letter")) == 1


def test_a_trigger_loop_stops_at_the_depth_limit_and_is_skipped(site):
    # Each run sets the key that triggers it again: depth 1, 2, … until the limit (8).
    script = site.script('kv.incr("loop")\n')
    add_trigger(site, "kv", script, key_glob="loop", retry=FAST_RETRY)
    kv_put(site, "loop", 0)
    skipped = wait_for(lambda: executions(site, status="skipped"), what="the skipped run")
    assert len(skipped) == 1 and skipped[0]["trigger_depth"] == 9
    runs = executions(site, script_id=script["id"])
    assert sorted(r["trigger_depth"] for r in runs if r["status"] == "ok") == list(range(1, 9))
    assert kv_get(site, "loop") == 8
    assert dead_letters(site, open=False) == []


def test_a_disabled_trigger_does_not_fire(site):
    trigger = add_trigger(site, "kv", site.script('kv.set("fired", true)\n'), key_glob="quiet")
    assert site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False}).status_code == 200
    kv_put(site, "quiet", 1)
    add_trigger(site, "kv", site.script('kv.set("sentinel", true)\n'), key_glob="later")
    kv_put(site, "later", 1)  # events run in order: once this one ran, the other would have
    wait_for(lambda: kv_get(site, "sentinel"))
    assert kv_get(site, "fired") is None
    assert executions(site, script_id=trigger["script_id"]) == []


def test_one_app_triggers_never_see_another_apps_changes(site, other_site):
    add_trigger(site, "kv", site.script('kv.set("mine/" .. event.key, true)\n'), key_glob="*")
    kv_put(other_site, "shared-name", 1)
    kv_put(site, "x", 1)
    wait_for(lambda: kv_get(site, "mine/x"))
    assert kv_get(site, "mine/shared-name") is None
