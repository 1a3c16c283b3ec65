"""docs/api.md §6: async routes answer 202 at once; the run is queued, retried per the route's policy."""
from tests.outbox.conftest import FAST_RETRY, dead_letters, executions, kv_get, wait_for

# Busy for about half a second, so the run can be seen queued before it ends.
SLOW = """
local started = os.clock()
while os.clock() - started < 0.5 do end
kv.set("async/" .. request.path, {json = request.json, method = request.method, principal = ctx.principal, source = ctx.source})
return "done"
"""


def execution(site, execution_id):
    response = site.api.get(f"/api/v1/admin/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_an_async_route_answers_202_and_runs_in_the_background(site):
    script = site.script(SLOW, sandbox={"max_instructions": 100_000_000})
    site.route("/jobs", method="POST", script=script, dispatch_mode="async")
    response = site.call("/jobs", method="POST", json={"job": 1})
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"accepted_at", "execution_id"} and body["accepted_at"].endswith("Z")
    queued = execution(site, body["execution_id"])
    assert queued["status"] == "queued" and queued["source"] == "http" and queued["attempt"] == 1
    assert queued["app_id"] == site.app["id"] and queued["script_id"] == script["id"]
    finished = wait_for(lambda: (lambda e: e if e["status"] == "ok" else None)(execution(site, body["execution_id"])),
                        what="the async run")
    assert finished["http_status"] == 200 and finished["event_id"] == queued["event_id"]
    seen = kv_get(site, "async//jobs")
    assert seen == {"json": {"job": 1}, "method": "POST", "source": "http"}  # principal is nil for HTTP


def test_an_async_route_retries_per_its_policy_then_dead_letters_as_http(site):
    script = site.script('error("down")\n')
    site.route("/hook", method="POST", script=script, dispatch_mode="async", retry={**FAST_RETRY, "max_attempts": 2})
    response = site.call("/hook", method="POST", json={"n": 1})
    assert response.status_code == 202
    first = response.json()["execution_id"]
    [dead] = wait_for(lambda: dead_letters(site), what="the dead letter")
    assert dead["source"] == "http" and dead["attempts"] == 2 and dead["trigger_id"] is None
    assert dead["event"]["json"] == {"n": 1} and dead["event"]["path"] == "/hook"
    # The log writer stores the second run's record a moment after its dead letter.
    runs = wait_for(lambda: (lambda rs: rs if all(r["status"] != "queued" for r in rs) else None)(
        executions(site, script_id=script["id"])), what="both runs logged")
    assert sorted((r["attempt"], r["status"]) for r in runs) == [(1, "script_error"), (2, "script_error")]
    assert first in {r["id"] for r in runs if r["attempt"] == 1}
    assert len({r["event_id"] for r in runs}) == 1


def test_a_route_without_a_policy_uses_the_default_delay(site):
    # Default policy: 5 attempts, 1 s base. The second attempt waits about a second,
    # queued in the log meanwhile.
    script = site.script('error("once")\n')
    site.route("/later", method="POST", script=script, dispatch_mode="async")
    first = site.call("/later", method="POST").json()["execution_id"]
    wait_for(lambda: execution(site, first)["status"] == "script_error")
    second = wait_for(lambda: [r for r in executions(site, script_id=script["id"]) if r["attempt"] == 2])
    assert second[0]["status"] == "queued"
