"""docs/api.md §10: the execution log — listing, filters, cursor, lookup, capabilities."""
import pytest

from tests.support.apps import other_site, site  # noqa: F401  (fixtures)

EXECUTION_FIELDS = {
    "id", "app_id", "script_id", "source", "status", "http_status", "queued_at", "started_at",
    "finished_at", "duration_ms", "attempt", "trigger_id", "trigger_depth", "event_id",
    "parent_execution_id", "error", "logs", "usage", "http_calls",
}


def executions(admin, site, **params):  # noqa: F811
    response = admin.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_run_is_logged_with_its_outcome(admin, site):  # noqa: F811
    route = site.route("/logged", 'log.info("hello", 42)\nreturn "ok"')
    assert site.call("/logged").text == "ok"
    listed = executions(admin, site)
    assert listed["next_cursor"] is None
    [execution] = listed["executions"]
    assert set(execution) == EXECUTION_FIELDS
    assert (execution["app_id"], execution["script_id"]) == (site.app["id"], route["script_id"])
    assert (execution["source"], execution["status"], execution["http_status"]) == ("http", "ok", 200)
    assert (execution["attempt"], execution["trigger_depth"], execution["error"]) == (1, 0, None)
    assert execution["queued_at"] <= execution["started_at"] <= execution["finished_at"]
    assert execution["duration_ms"] >= 0
    [entry] = execution["logs"]
    assert entry["level"] == "info" and "hello" in entry["message"] and entry["at"].endswith("Z")
    assert execution["usage"]["instructions"] > 0
    # One run's own page adds what it was asked and answered; listings leave those out.
    detail = admin.get(f"/api/v1/admin/executions/{execution['id']}").json()
    assert {k: v for k, v in detail.items() if k not in ("input", "response")} == execution
    assert detail["input"]["request"]["path"] == "/logged" and detail["response"]["body"] == "ok"


def test_a_failed_run_keeps_the_error_for_the_log(admin, site):  # noqa: F811
    site.route("/fails", 'error("secret detail")')
    response = site.call("/fails")
    assert response.status_code == 422
    assert "secret detail" not in response.text
    execution = admin.get(f"/api/v1/admin/executions/{response.json()['error']['execution_id']}").json()
    assert execution["status"] == "script_error" and execution["http_status"] == 422
    assert "secret detail" in execution["error"]["message"] and execution["error"]["line"] == 1


def test_newest_first_with_a_cursor(admin, site):  # noqa: F811
    site.route("/many", 'return "x"')
    for _ in range(5):
        assert site.call("/many").status_code == 200
    everything = executions(admin, site)["executions"]
    assert len(everything) == 5
    assert [e["queued_at"] for e in everything] == sorted((e["queued_at"] for e in everything), reverse=True)
    first = executions(admin, site, limit=2)
    second = executions(admin, site, limit=2, cursor=first["next_cursor"])
    third = executions(admin, site, limit=2, cursor=second["next_cursor"])
    paged = [e["id"] for page in (first, second, third) for e in page["executions"]]
    assert paged == [e["id"] for e in everything]
    assert third["next_cursor"] is None


def test_filters(admin, site):  # noqa: F811
    good = site.route("/good", 'return "fine"')
    site.route("/bad", 'error("no")')
    site.call("/good")
    site.call("/bad")
    admin.post(f"/api/v1/execute/{good['script_id']}", json={})
    assert {e["status"] for e in executions(admin, site, status="script_error")["executions"]} == {"script_error"}
    by_script = executions(admin, site, script_id=good["script_id"])["executions"]
    assert len(by_script) == 2 and {e["script_id"] for e in by_script} == {good["script_id"]}
    [manual] = executions(admin, site, source="execute")["executions"]
    assert manual["source"] == "execute" and manual["http_status"] == 200


@pytest.mark.parametrize("params, field", [
    ({"status": "exploded"}, "status"),
    ({"source": "carrier-pigeon"}, "source"),
    ({"script_id": "abc"}, "script_id"),
    ({"limit": "0"}, "limit"),
    ({"cursor": "!!!"}, "cursor"),
])
def test_bad_filters_answer_422(admin, site, params, field):  # noqa: F811
    response = admin.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params=params)
    assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_executions_stay_within_their_app(admin, site, other_site):  # noqa: F811
    site.route("/mine", 'return "mine"')
    site.call("/mine")
    assert executions(admin, other_site)["executions"] == []


def test_unknown_execution_answers_404(admin):
    response = admin.get("/api/v1/admin/executions/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_viewers_read_logs(make_user, site):  # noqa: F811
    site.route("/v", 'return "v"')
    site.call("/v")
    _, viewer = make_user("viewer")
    response = viewer.get(f"/api/v1/admin/apps/{site.app['id']}/executions")
    assert response.status_code == 200 and len(response.json()["executions"]) == 1


def test_logs_need_a_token(anonymous, site):  # noqa: F811
    assert anonymous.get(f"/api/v1/admin/apps/{site.app['id']}/executions").status_code == 401
