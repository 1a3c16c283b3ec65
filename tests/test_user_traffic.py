"""docs/api.md §4 and §6 over HTTP: hosts, route matching, the request table, responses, outcomes."""
import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.apps import new_site, other_site, site  # noqa: F401  (fixtures)
from tests.support.live import LiveServer, login

ECHO = "return {method = request.method, path = request.path, host = request.host, params = request.params}"
# A backtracking pattern runs in C for seconds without a VM instruction: only the
# timeout stops it.
STUCK = "return ('a'):rep(400):find('.-.-.-b')"


def test_fresh_install_says_hello_on_localhost(server):
    for host in ("localhost", "127.0.0.1", f"localhost:{server.port}"):
        response = requests.get(server.url + "/", headers={"Host": host}, timeout=10)
        assert response.status_code == 200
        assert response.text == "Hello from PiCloud!"
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_unclaimed_hosts_answer_unknown_host(server):
    response = requests.get(server.url + "/", headers={"Host": "nobody.example"}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_host"


def test_exact_claims_beat_wildcards(admin, server, unique):
    base = f"{unique('zone')}.test"
    wild = new_site(admin, server.url, "wild")
    exact = new_site(admin, server.url, "exact")
    admin.post(f"/api/v1/admin/apps/{wild.app['id']}/domains", json={"pattern": f"*.{base}"})
    admin.post(f"/api/v1/admin/apps/{exact.app['id']}/domains", json={"pattern": f"www.{base}"})
    wild.route("/", 'return "wild"')
    exact.route("/", 'return "exact"')
    assert wild.call("/", host=f"a.{base}").text == "wild"
    assert wild.call("/", host=f"a.b.{base}").text == "wild"
    assert wild.call("/", host=f"WWW.{base}.:8080").text == "exact"
    assert wild.call("/", host=base).json()["error"]["code"] == "unknown_host"


def test_the_request_table(site):  # noqa: F811
    site.route(
        "/echo/:id/*rest",
        """
        return {
          method = request.method, path = request.path, host = request.host,
          params = request.params, query = request.query, body = request.body,
          json = request.json, header = request.headers["x-thing"], ctype = request.headers["content-type"],
          principal = ctx.principal == nil, source = ctx.source, app = ctx.app.slug,
        }
        """,
        method="POST",
    )
    response = site.call(
        "/echo/a%20b/x/y?q=1&q=2&r=3",
        method="POST",
        json={"n": 1},
        headers={"X-Thing": "yes"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "method": "POST",
        "path": "/echo/a b/x/y",
        "host": site.host,
        "params": {"id": "a b", "rest": "x/y"},
        "query": {"q": "1", "r": "3"},
        "body": '{"n": 1}',
        "json": {"n": 1},
        "header": "yes",
        "ctype": "application/json",
        "principal": True,
        "source": "http",
        "app": site.slug,
    }


def test_invalid_json_body_gives_json_nil(site):  # noqa: F811
    site.route("/j", "return {is_nil = request.json == nil, body = request.body}", method="POST")
    response = site.call("/j", method="POST", data="{broken", headers={"Content-Type": "application/json"})
    assert response.json() == {"is_nil": True, "body": "{broken"}


def test_a_non_utf8_body_arrives_byte_for_byte(site):  # noqa: F811
    site.route("/bytes", "return {status = 200, body = tostring(#request.body) .. ':' .. request.body:byte(1)}", method="POST")
    response = site.call("/bytes", method="POST", data=b"\xff\xfe\x00a")
    assert response.status_code == 200 and response.text == "4:255"


def test_repeated_header_lines_arrive_combined(server, site):  # noqa: F811
    # WSGI servers merge repeated header lines into one comma-separated value before
    # PiCloud sees them (equivalent per RFC 9110 §5.3); the script gets that value.
    site.route("/h", 'return request.headers["x-rep"]')
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", "/h", skip_host=True)
    conn.putheader("Host", site.host)
    conn.putheader("X-Rep", "first")
    conn.putheader("X-Rep", "second")
    conn.endheaders()
    assert conn.getresponse().read() == b"first,second"


@pytest.mark.parametrize(
    "source, status, content_type, body",
    [
        ('return "text"', 200, "text/plain; charset=utf-8", b"text"),
        ("return nil", 204, None, b""),
        ("return 42", 200, "application/json", b"42"),
        ("return true", 200, "application/json", b"true"),
        ("return {a = 1}", 200, "application/json", {"a": 1}),
        ('return {status = 201, headers = {["X-Made"] = "yes"}, body = "made"}', 201, "text/plain", b"made"),
        ("return {status = 202, body = {ok = true}}", 202, "application/json", {"ok": True}),
        ('return {status = 200, headers = {["Content-Type"] = "text/html"}, body = "<b>"}', 200, "text/html", b"<b>"),
    ],
)
def test_return_values_become_responses(site, source, status, content_type, body):  # noqa: F811
    site.route("/r", source)
    response = site.call("/r")
    assert response.status_code == status
    if content_type:
        assert response.headers["Content-Type"].startswith(content_type)
    assert (response.json() if isinstance(body, dict) else response.content) == body
    if status == 201:
        assert response.headers["X-Made"] == "yes"


def test_matching_over_http(site):  # noqa: F811
    site.route("/users/:id", 'return "param " .. request.params.id')
    site.route("/users/me", 'return "literal"')
    site.route("/any/:id", 'return "any method"', method="*")
    site.route("/files/*rest", 'return "rest=" .. request.params.rest')
    assert site.call("/users/me").text == "literal"
    assert site.call("/users/7").text == "param 7"
    assert site.call("/users/7/").text == "param 7"
    assert site.call("/any/7", method="DELETE").text == "any method"
    assert site.call("/any/7", method="OPTIONS").text == "any method"
    assert site.call("/files").text == "rest="
    assert site.call("/files/a/b").text == "rest=a/b"


def test_an_exact_method_and_any_method_share_a_path(site):  # noqa: F811
    site.route("/orders/:id", 'return "read " .. request.params.id', method="GET")
    site.route("/orders/:id", 'return "other " .. request.method', method="*")
    assert site.call("/orders/7").text == "read 7"
    assert site.call("/orders/7", method="HEAD").status_code == 200
    assert site.call("/orders/7", method="POST").text == "other POST"
    assert site.call("/orders/7", method="DELETE").text == "other DELETE"


def test_head_falls_back_to_get_without_a_body(site):  # noqa: F811
    site.route("/page", 'return "a page"')
    response = site.call("/page", method="HEAD")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "6"


def test_no_route_and_method_not_allowed(site):  # noqa: F811
    site.route("/thing", 'return "t"', method="PUT")
    site.route("/thing", 'return "t"', method="GET")
    response = site.call("/nothing")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_route"
    response = site.call("/thing", method="POST")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, PUT, HEAD"


def test_host_specific_routes_beat_host_null(admin, site):  # noqa: F811
    site.route("/which", 'return "every host"')
    site.route("/which", 'return "this host"', host=site.host)
    other = f"alt.{site.host}"
    admin.post(f"/api/v1/admin/apps/{site.app['id']}/domains", json={"pattern": other})
    assert site.call("/which").text == "this host"
    assert site.call("/which", host=other).text == "every host"


def test_changes_take_effect_at_once(admin, site):  # noqa: F811
    route = site.route("/live", 'return "v1"')
    assert site.call("/live").text == "v1"
    admin.patch(f"/api/v1/admin/scripts/{route['script_id']}", json={"source": 'return "v2"'})
    assert site.call("/live").text == "v2"
    admin.patch(f"/api/v1/admin/routes/{route['id']}", json={"enabled": False})
    assert site.call("/live").json()["error"]["code"] == "no_route"
    admin.patch(f"/api/v1/admin/routes/{route['id']}", json={"enabled": True, "path": "/moved"})
    assert site.call("/moved").text == "v2"
    admin.delete(f"/api/v1/admin/routes/{route['id']}")
    assert site.call("/moved").status_code == 404


def test_apps_never_see_each_others_routes(site, other_site):  # noqa: F811
    site.route("/private", 'return "mine"')
    assert site.call("/private").text == "mine"
    response = other_site.call("/private")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_route"


def test_reserved_prefixes_never_reach_scripts(server, site):  # noqa: F811
    site.route("/*anything", 'return "script"', method="*")
    assert site.call("/whatever/else").text == "script"
    assert site.call("/healthz").json()["status"] == "ok"
    assert "schema" in site.call("/version").json()
    assert site.call("/api/v1/nothing").json()["error"]["code"] == "not_found"
    assert site.call("/admin/login").headers["Content-Type"].startswith("text/html")
    assert site.call("/static/app.css").status_code == 200
    assert site.call("/metrics").text != "script"


def test_a_body_over_the_limit_answers_413(site):  # noqa: F811
    site.route("/upload", "return #request.body", method="POST")
    response = site.call("/upload", method="POST", data=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert site.call("/upload", method="POST", data=b"x" * 1000).text == "1000"


def test_user_post_needs_no_csrf_token(site):  # noqa: F811
    site.route("/form", "return request.body", method="POST")
    response = site.call("/form", method="POST", data={"a": "b"})
    assert response.status_code == 200 and response.text == "a=b"


# Outcomes (docs/api.md §6 table) --------------------------------------------------------


def failing(admin, site, source, **script_fields):  # noqa: F811
    script = site.script(source, **script_fields)
    site.route("/fail", script=script)
    response = site.call("/fail")
    error = response.json()["error"]
    logged = admin.get(f"/api/v1/admin/executions/{error['execution_id']}").json()
    return response, error, logged


def test_script_error_is_422_without_the_scripts_message(admin, site):  # noqa: F811
    response, error, logged = failing(admin, site, 'error("db password is hunter2")')
    assert response.status_code == 422 and error["code"] == "script_error"
    assert "hunter2" not in response.text
    assert "hunter2" in logged["error"]["message"]


@pytest.mark.parametrize(
    "source",
    [
        "return {status = 99}",
        'return {status = 200, headers = {["Bad Header"] = "x"}}',
        'return {status = 200, headers = {["X-Split"] = "a\\r\\nInjected: yes"}}',
        "return {f = function() end}",
        "return 0/0",
        "local t = {} t.self = t return t",
    ],
)
def test_bad_script_response_is_502(admin, site, source):  # noqa: F811
    response, error, logged = failing(admin, site, source)
    assert response.status_code == 502 and error["code"] == "bad_script_response"
    assert logged["status"] == "bad_script_response" and logged["http_status"] == 502
    assert "Injected" not in response.headers


def test_timeout_is_504(admin, site):  # noqa: F811
    started = time.monotonic()
    response, error, logged = failing(admin, site, STUCK, timeout_seconds=1)
    assert response.status_code == 504 and error["code"] == "timeout"
    assert time.monotonic() - started < 5
    assert logged["status"] == "timeout"


def test_limit_exceeded_is_507_naming_the_knob(admin, site):  # noqa: F811
    response, error, logged = failing(admin, site, "while true do end", sandbox={"max_instructions": 100_000})
    assert response.status_code == 507
    assert (error["code"], error["limit"]) == ("limit_exceeded", "max_instructions")
    assert logged["status"] == "limit_exceeded"


def test_a_response_over_max_output_bytes_is_507(admin, site):  # noqa: F811
    response, error, _ = failing(admin, site, 'return string.rep("x", 5000)', sandbox={"max_output_bytes": 1000})
    assert response.status_code == 507 and error["limit"] == "max_output_bytes"


def test_a_spinning_app_does_not_stop_another(site, other_site):  # noqa: F811
    site.route("/spin", STUCK, script=site.script(STUCK, timeout_seconds=3))
    other_site.route("/hello", 'return "still here"')
    spinner = threading.Thread(target=site.call, args=("/spin",))
    spinner.start()
    time.sleep(0.3)
    latencies = []
    try:
        while spinner.is_alive() and len(latencies) < 50:
            started = time.monotonic()
            response = other_site.call("/hello")
            latencies.append(time.monotonic() - started)
            assert response.text == "still here"
    finally:
        spinner.join()
    assert len(latencies) >= 10
    assert sorted(latencies)[int(len(latencies) * 0.9)] < 0.5


@pytest.fixture(scope="module")
def single_slot_server(server_env, database, tmp_path_factory):
    """A server with one executor process that gives up on a slot after 200 ms."""
    env = {**server_env, "PICLOUD_EXECUTOR_PROCESSES": "1", "PICLOUD_QUEUE_WAIT_MS": "200"}
    live = LiveServer(env, tmp_path_factory.mktemp("single") / "server.log").start()
    yield live
    live.stop()


def test_no_free_slot_is_503_overloaded(single_slot_server):
    from tests.conftest import ADMIN_PASSWORD

    api = login(single_slot_server.url, "admin", ADMIN_PASSWORD)
    busy = new_site(api, single_slot_server.url, "busy")
    busy.route("/stuck", script=busy.script(STUCK, timeout_seconds=2))
    busy.route("/quick", 'return "quick"')
    spinner = threading.Thread(target=busy.call, args=("/stuck",))
    spinner.start()
    time.sleep(0.5)
    try:
        started = time.monotonic()
        response = busy.call("/quick")
        waited = time.monotonic() - started
    finally:
        spinner.join()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "overloaded"
    assert response.headers["Retry-After"] == "1"
    assert 0.15 < waited < 1.5
    # The killed executor is replaced in the background; then runs go through again.
    deadline = time.monotonic() + 10
    while busy.call("/quick").status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert busy.call("/quick").text == "quick"


def test_requests_are_logged_off_the_request_path(admin, site):  # noqa: F811
    site.route("/counted", 'return "c"')
    for _ in range(3):
        site.call("/counted")
    listed = admin.get(f"/api/v1/admin/apps/{site.app['id']}/executions").json()["executions"]
    assert len(listed) == 3 and {e["status"] for e in listed} == {"ok"}
    assert json.loads(json.dumps(listed))  # plain JSON all the way down


def executor_pids(server):
    """Return the pids of a server's executor processes (its children)."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_an_executor_that_dies_mid_run_is_500(single_slot_server):
    from tests.conftest import ADMIN_PASSWORD

    api = login(single_slot_server.url, "admin", ADMIN_PASSWORD)
    site = new_site(api, single_slot_server.url, "dies")
    site.route("/dies", script=site.script(STUCK, timeout_seconds=10))
    site.route("/fine", 'return "fine"')
    deadline = time.monotonic() + 10
    while site.call("/fine").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)  # an executor replaced by an earlier test may still be starting
    answers = []
    caller = threading.Thread(target=lambda: answers.append(site.call("/dies")))
    caller.start()
    time.sleep(0.5)
    for pid in executor_pids(single_slot_server):
        os.kill(pid, signal.SIGKILL)
    caller.join()
    [response] = answers
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["execution_id"]
    logged = api.get(f"/api/v1/admin/executions/{error['execution_id']}").json()
    assert logged["status"] == "internal_error" and logged["http_status"] == 500
    while site.call("/fine").status_code != 200 and time.monotonic() < deadline + 10:
        time.sleep(0.1)
    assert site.call("/fine").text == "fine"


def test_async_routes_answer_202_and_run_later(admin, site):  # noqa: F811
    site.route("/later", 'log.info("ran") return "done"', method="POST", dispatch_mode="async")
    response = site.call("/later", method="POST", json={"x": 1})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"accepted_at", "execution_id"} and body["accepted_at"].endswith("Z")
    deadline = time.monotonic() + 10
    while True:
        execution = admin.get(f"/api/v1/admin/executions/{body['execution_id']}")
        if execution.status_code == 200 and execution.json()["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, execution.text
        time.sleep(0.1)
    assert execution.json()["status"] == "ok" and execution.json()["source"] == "http"
