"""docs/api.md §11 against a real local upstream: methods, headers, bodies, redirects, timeouts, limits."""
import base64
import hashlib
import json
import time

import pytest

from tests.egress.conftest import last_execution, run
from tests.support.apps import add_trigger, new_site, wait_for


def lua_json(site, source, **options):
    response = run(site, source, **options)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json", response.text
    return response.json()


def test_get_sends_headers_and_reads_status_headers_and_body(world, upstream):
    echo = lua_json(world, f'''
        local r = http.get("{upstream.url}/echo/a?token=abc&x=1", {{headers = {{["X-Trace"] = "t-1"}}}})
        local sent = json.decode(r.body)
        return {{code = r.status, type = r.headers["content-type"], repeat_ = r.headers["x-repeat"],
                 method = sent.method, path = sent.path, trace = sent.headers["x-trace"], host = sent.headers["host"]}}
    ''')
    assert echo == {
        "code": 200, "type": "application/json", "repeat_": "a, b", "method": "GET",
        "path": "/echo/a?token=abc&x=1", "trace": "t-1", "host": f"127.0.0.1:{upstream.port}",
    }
    execution = last_execution(world)
    assert execution["usage"]["http_requests"] == 1
    [call] = execution["http_calls"]
    assert call["method"] == "GET" and call["status"] == 200 and call["error"] is None
    assert call["url"] == f"{upstream.url}/echo/a"  # no query string
    assert isinstance(call["duration_ms"], (int, float)) and call["duration_ms"] >= 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_reaches_the_upstream(world, upstream, method):
    result = lua_json(world, f'''
        local r = http.request{{method = "{method}", url = "{upstream.url}/echo", body = "payload"}}
        local sent = json.decode(r.body)
        return {{sent.method, encoding.base64_decode(sent.body_base64)}}
    ''')
    assert result == [method, "payload"]


def test_head_has_status_and_headers_but_no_body(world, upstream):
    result = lua_json(world, f'local r = http.request{{method = "HEAD", url = "{upstream.url}/echo"}} return {{r.status, #r.body}}')
    assert result == [200, 0]


def test_a_table_body_is_sent_as_json(world, upstream):
    result = lua_json(world, f'''
        local r = http.post("{upstream.url}/echo", {{item = "tea", n = 2, tags = {{"a", "b"}}}})
        local sent = json.decode(r.body)
        return {{sent.headers["content-type"], encoding.base64_decode(sent.body_base64)}}
    ''')
    assert result[0] == "application/json"
    assert json.loads(result[1]) == {"item": "tea", "n": 2, "tags": ["a", "b"]}


def test_a_script_may_set_its_own_content_type_for_a_table_body(world, upstream):
    result = lua_json(world, f'''
        local r = http.post("{upstream.url}/echo", {{a = 1}}, {{headers = {{["Content-Type"] = "application/vnd.x+json"}}}})
        return {{json.decode(r.body).headers["content-type"]}}
    ''')
    assert result == ["application/vnd.x+json"]


def test_binary_bodies_cross_byte_for_byte(world, upstream):
    result = lua_json(world, f'''
        local out = {{}}
        for i = 0, 255 do out[#out + 1] = string.char(i) end
        local sent = table.concat(out)
        local r = http.post("{upstream.url}/echo", sent)
        local echoed = encoding.base64_decode(json.decode(r.body).body_base64)
        local got = http.get("{upstream.url}/bytes/70000")
        return {{echoed == sent, #got.body, encoding.hex_encode(crypto.sha256(got.body))}}
    ''')
    expected = hashlib.sha256(bytes(i % 256 for i in range(70000))).hexdigest()
    assert result == [True, 70000, expected]


def test_a_body_over_max_string_bytes_ends_the_run_even_under_pcall(world, upstream):
    for url in (f"{upstream.url}/bytes/5000", f"{upstream.url}/bytes/5000?chunked=1"):
        response = run(world, f'pcall(http.get, "{url}") return "survived"', sandbox={"max_string_bytes": 4096})
        assert response.status_code == 507, response.text
        assert response.json()["error"]["limit"] == "max_string_bytes"
    assert lua_json(world, f'return #http.get("{upstream.url}/bytes/4096").body', sandbox={"max_string_bytes": 4096}) == 4096


def test_redirects_are_returned_unless_followed(world, upstream):
    result = lua_json(world, f'''
        local r = http.get("{upstream.url}/redirect/2")
        local followed = http.get("{upstream.url}/redirect/5", {{follow_redirects = true}})
        return {{r.status, r.headers.location, followed.status, json.decode(followed.body).path}}
    ''')
    assert result == [302, "/redirect/1", 200, "/echo"]
    execution = last_execution(world)
    assert execution["usage"]["http_requests"] == 2  # a call counts once whatever its redirects


def test_more_than_five_redirects_is_a_transport_failure(world, upstream):
    result = lua_json(world, f'''
        local r, err = http.get("{upstream.url}/redirect/6", {{follow_redirects = true}})
        return {{r == nil, err}}
    ''')
    assert result == [True, "too many redirects"]
    assert last_execution(world)["http_calls"][0]["error"] == "too many redirects"


def test_303_turns_a_post_into_a_get_without_body(world, upstream):
    result = lua_json(world, f'''
        local r = http.post("{upstream.url}/redirect/1?code=303", "data", {{follow_redirects = true}})
        local sent = json.decode(r.body)
        return {{sent.method, sent.body_base64}}
    ''')
    assert result == ["GET", ""]


def test_a_call_times_out_at_timeout_ms(world, upstream):
    started = time.monotonic()
    result = lua_json(world, f'''
        local r, err = http.get("{upstream.url}/slow/3", {{timeout_ms = 300}})
        return {{r == nil, err}}
    ''')
    assert result == [True, "timeout"]
    assert time.monotonic() - started < 2.5


def test_a_body_that_drips_past_the_timeout_times_out(world, upstream):
    started = time.monotonic()
    result = lua_json(world, f'local r, err = http.get("{upstream.url}/drip/3", {{timeout_ms = 500}}) return {{r == nil, err}}')
    assert result == [True, "timeout"]
    assert time.monotonic() - started < 2.5


def test_a_call_is_capped_by_what_is_left_of_the_run(world, upstream):
    started = time.monotonic()
    response = run(world, f'local r, err = http.get("{upstream.url}/slow/4", {{timeout_ms = 60000}}) return err', timeout_seconds=1)
    assert response.status_code == 504, response.text
    assert time.monotonic() - started < 3


def test_transport_failures_return_nil_and_a_message(world, upstream, closed_port):
    result = lua_json(world, f'''
        local refused, refused_err = http.get("http://127.0.0.1:{closed_port}/")
        local reset, reset_err = http.get("{upstream.url}/reset")
        return {{refused == nil, refused_err, reset == nil, type(reset_err)}}
    ''')
    assert result == [True, "connection refused", True, "string"]
    calls = last_execution(world)["http_calls"]
    assert [call["status"] for call in calls] == [None, None]
    assert calls[0]["error"] == "connection refused" and calls[1]["error"]


def test_an_untrusted_certificate_is_a_tls_failure(world, tls_upstream):
    result = lua_json(world, f'local r, err = http.get("{tls_upstream.url}/echo") return {{r == nil, err}}')
    assert result[0] is True and result[1].startswith("TLS error") and "certificate verify failed" in result[1]
    [call] = last_execution(world)["http_calls"]
    assert call["status"] is None and call["error"].startswith("TLS error")


def test_a_secret_changed_between_runs_is_read_fresh(world):
    url = f"/api/v1/admin/apps/{world.app['id']}/secrets/ROTATING"
    world.api.put(url, json={"value": "first"})
    assert lua_json(world, "return {secrets.ROTATING}") == ["first"]
    world.api.put(url, json={"value": "second"})
    assert lua_json(world, "return {secrets.ROTATING}") == ["second"]
    world.api.delete(url)
    assert lua_json(world, "return {secrets.ROTATING == nil}") == [True]


def test_error_statuses_are_responses_not_failures(world, upstream):
    assert lua_json(world, f'local r = http.get("{upstream.url}/status/503") return {{r.status, r.body}}') == [503, "status body"]


def test_max_http_requests_ends_the_run_and_pcall_cannot_catch_it(world, upstream):
    source = f'for i = 1, 3 do pcall(http.get, "{upstream.url}/echo") end return "survived"'
    response = run(world, source, sandbox={"max_http_requests": 2})
    assert response.status_code == 507, response.text
    assert response.json()["error"]["limit"] == "max_http_requests"
    execution = last_execution(world)
    assert execution["usage"]["http_requests"] == 2 and len(execution["http_calls"]) == 2


def test_the_default_is_ten_requests(world, upstream):
    assert lua_json(world, f'for i = 1, 10 do http.get("{upstream.url}/echo") end return {{"ok"}}') == ["ok"]
    response = run(world, f'for i = 1, 11 do http.get("{upstream.url}/echo") end return "ok"')
    assert response.status_code == 507 and response.json()["error"]["limit"] == "max_http_requests"


@pytest.mark.parametrize("call, message", [
    ('http.request{url = 5}', "url must be a string"),
    ('http.request{url = "ftp://example.com/"}', "only http and https"),
    ('http.request{method = "BREW", url = "http://example.com/"}', "method must be one of"),
    ('http.request{url = "http://example.com/", colour = "red"}', "unknown option"),
    ('http.request{url = "http://example.com/", headers = {["Bad Header"] = "x"}}', "invalid header name"),
    ('http.request{url = "http://example.com/", headers = {["X-A"] = "a\\r\\nInjected: 1"}}', "control characters"),
    ('http.request{url = "http://example.com/", timeout_ms = -1}', "timeout_ms"),
    ('http.request("http://example.com/")', "table expected"),
    ('http.get("http://user:pw@example.com/")', "credentials"),
])
def test_bad_arguments_are_catchable_errors(world, call, message):
    result = lua_json(world, f'local ok, err = pcall(function() return {call} end) return {{ok, err}}')
    assert result[0] is False and message in result[1]
    uncaught = run(world, f"return {call}")
    assert uncaught.status_code == 422 and uncaught.json()["error"]["code"] == "script_error"


def test_egress_hosts_narrow_what_an_app_may_call(world, upstream):
    patched = world.api.patch(f"/api/v1/admin/apps/{world.app['id']}", json={"egress_hosts": ["api.example.test"]})
    assert patched.status_code == 200
    before = len(upstream.seen)
    result = lua_json(world, f'local ok, err = pcall(http.get, "{upstream.url}/echo/narrowed") return {{ok, err}}')
    assert result[0] is False and "egress_hosts" in result[1]
    assert len(upstream.seen) == before
    world.api.patch(f"/api/v1/admin/apps/{world.app['id']}", json={"egress_hosts": ["127.0.0.1"]})
    assert lua_json(world, f'return http.get("{upstream.url}/echo").status') == 200


def test_a_redirect_to_a_forbidden_address_is_refused_at_that_hop(world, upstream):
    forbidden = "http://127.0.0.2:9/secret"
    result = lua_json(world, f'''
        local ok, err = pcall(http.get, "{upstream.url}/redirect/1?to={forbidden}", {{follow_redirects = true}})
        return {{ok, err}}
    ''')
    assert result[0] is False and "not a public address" in result[1]
    [call] = last_execution(world)["http_calls"]
    assert call["status"] is None and call["error"].startswith("refused")


def test_secrets_are_read_and_masked_in_everything_the_run_records(world, upstream):
    secret = "sk-live-" + base64.b16encode(bytes(range(8))).decode()
    world.api.put(f"/api/v1/admin/apps/{world.app['id']}/secrets/API_KEY", json={"value": secret})
    response = run(world, f'''
        log.info("key is " .. secrets.API_KEY)
        local r = http.get("{upstream.url}/echo/" .. secrets.API_KEY .. "?k=" .. secrets.API_KEY,
                           {{headers = {{Authorization = "Bearer " .. secrets.API_KEY}}}})
        assert(json.decode(r.body).headers.authorization == "Bearer " .. secrets.API_KEY)
        error("failed with " .. secrets.API_KEY)
    ''')
    assert response.status_code == 422
    execution = last_execution(world)
    text = json.dumps(execution)
    assert secret not in text
    assert execution["logs"][0]["message"] == "key is [secret:API_KEY]"
    assert "failed with [secret:API_KEY]" in execution["error"]["message"]
    assert execution["http_calls"][0]["url"] == f"{upstream.url}/echo/[secret:API_KEY]"


def test_secrets_table_is_read_only_and_missing_names_are_nil(world):
    world.api.put(f"/api/v1/admin/apps/{world.app['id']}/secrets/PRESENT", json={"value": "v"})
    result = lua_json(world, '''
        local ok, err = pcall(function() secrets.PRESENT = "changed" end)
        return {secrets.PRESENT, secrets.MISSING == nil, ok, err:match("read%-only") ~= nil}
    ''')
    assert result == ["v", True, False, True]


def test_an_app_never_reads_another_apps_secrets(world, egress_admin, egress_server):
    other = new_site(egress_admin, egress_server.url, "other")
    other.api.put(f"/api/v1/admin/apps/{other.app['id']}/secrets/ONLY_OTHER", json={"value": "theirs"})
    assert lua_json(world, "return {secrets.ONLY_OTHER == nil}") == [True]
    assert lua_json(other, "return {secrets.ONLY_OTHER}") == ["theirs"]


def test_a_dead_letter_keeps_the_masked_error(world):
    secret = "dl-secret-" + base64.b16encode(bytes(range(4))).decode()
    world.api.put(f"/api/v1/admin/apps/{world.app['id']}/secrets/DL_KEY", json={"value": secret})
    script = world.script('error("cannot use " .. secrets.DL_KEY)')
    add_trigger(world, "kv", script, key_glob="fail/*", retry={"max_attempts": 1})
    put = world.api.put(f"/api/v1/admin/apps/{world.app['id']}/kv/fail%2F1", json=1)
    assert put.status_code == 200, put.text

    def dead_letters():
        return world.api.get(f"/api/v1/admin/apps/{world.app['id']}/dead-letters").json()["dead_letters"]

    [dead_letter] = wait_for(dead_letters, what="the dead letter")
    assert secret not in json.dumps(dead_letter)
    assert "cannot use [secret:DL_KEY]" in dead_letter["last_error"]["message"]
