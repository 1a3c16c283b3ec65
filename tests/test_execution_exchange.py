"""What the execution log keeps of a run's input and answer (docs/api.md §10)."""
import json

from tests.support.apps import add_trigger, site, wait_for  # noqa: F401  (fixture)


def execution_of(site, execution_id):
    return wait_for(
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            site.api.get(f"/api/v1/admin/executions/{execution_id}")
        ),
        what="the execution",
    )


def test_an_http_run_keeps_its_request_and_response(site):  # noqa: F811
    site.route("/echo/:id", 'return {status = 201, headers = {["x-kind"] = "echo"}, body = {id = request.params.id}}',
               method="POST")
    answer = site.call(
        "/echo/7?q=1", method="POST", json={"item": "tea"},
        headers={"Authorization": "Bearer top-secret", "X-Trace": "t-1"},
    )
    assert answer.status_code == 201
    run = execution_of(site, _last_id(site))
    request = run["input"]["request"]
    assert (request["method"], request["path"], request["host"]) == ("POST", "/echo/7", site.host)
    assert request["params"] == {"id": "7"} and request["query"] == {"q": "1"}
    assert request["headers"]["authorization"] == "[redacted]" and request["headers"]["x-trace"] == "t-1"
    assert json.loads(request["body"]) == {"item": "tea"} and request["truncated"] is False
    response = run["response"]
    assert response["status"] == 201 and ["x-kind", "echo"] in response["headers"]
    assert json.loads(response["body"]) == {"id": "7"}
    # Listings stay light: no input or response there.
    listed = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions").json()["executions"]
    assert "input" not in listed[0] and "response" not in listed[0]


def test_a_large_body_is_kept_as_a_preview(site):  # noqa: F811
    site.route("/big", "return request.body", method="POST")
    body = "x" * 40_000
    assert site.call("/big", method="POST", data=body).status_code == 200
    run = execution_of(site, _last_id(site))
    assert run["input"]["request"]["body_bytes"] == 40_000 and run["input"]["request"]["truncated"] is True
    assert len(run["input"]["request"]["body"]) == 16 * 1024
    assert run["response"]["body_bytes"] == 40_000 and len(run["response"]["body"]) == 16 * 1024


def test_a_triggered_run_keeps_its_event_and_no_response(site):  # noqa: F811
    script = site.script("return true")
    add_trigger(site, "kv", script, key_glob="orders/*")
    assert site.api.put(f"/api/v1/admin/apps/{site.app['id']}/kv/orders%2F1", json={"n": 1}).status_code == 200
    runs = wait_for(
        lambda: [e for e in site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions",
                                         params={"source": "kv"}).json()["executions"] if e["status"] == "ok"],
        what="the triggered run",
    )
    run = execution_of(site, runs[0]["id"])
    event = run["input"]["event"]
    assert (event["kind"], event["op"], event["key"], event["value"]) == ("kv", "set", "orders/1", {"n": 1})
    assert run["response"] is None


def test_secret_values_are_masked_in_what_the_log_keeps(site):  # noqa: F811
    assert site.api.put(f"/api/v1/admin/apps/{site.app['id']}/secrets/TOKEN", json={"value": "s3cr3t-value"}).status_code == 200
    site.route("/leak", "return 'token=' .. secrets.TOKEN .. ' got=' .. request.body", method="POST")
    assert site.call("/leak", method="POST", data="s3cr3t-value").text == "token=s3cr3t-value got=s3cr3t-value"
    run = execution_of(site, _last_id(site))
    assert "s3cr3t-value" not in json.dumps(run)
    assert run["response"]["body"] == "token=[secret:TOKEN] got=[secret:TOKEN]"
    assert run["input"]["request"]["body"] == "[secret:TOKEN]"


def _last_id(site):
    return wait_for(
        lambda: (site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params={"limit": 1})
                 .json()["executions"] or [{}])[0].get("id"),
        what="a run in the log",
    )
