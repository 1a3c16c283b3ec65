"""Host functions: scripts call kv.*/docs.*, the web process answers."""
import logging
import time

from picloud.sandbox import HostError, Status

from .jobs import body_json, body_text

KV = (("kv", ("get", "set", "delete", "incr", "list")),)


class Recorder:
    """A host that records calls and answers from a dict of results."""

    def __init__(self, results=None):
        self.calls = []
        self.results = results or {}

    def __call__(self, module, fn, args):
        self.calls.append((module, fn, args))
        result = self.results.get(fn)
        return result(*args) if callable(result) else result


def test_host_functions_are_lua_functions_in_their_module(run):
    outcome = run("return {type(kv), type(kv.get), type(kv.list), kv.nope == nil}", host_api=KV, host=Recorder())
    assert body_json(outcome) == ["table", "function", "function", True]


def test_arguments_arrive_as_plain_values(run):
    host = Recorder()
    run(
        "kv.set('key', {n = 1, f = 1.5, s = 'ä', b = true, list = {1, json.null, 3}, empty = {}}) "
        "kv.list{prefix = 'a', limit = 2} kv.get('x', nil, json.null)",
        host_api=KV,
        host=host,
    )
    assert host.calls == [
        ("kv", "set", ["key", {"n": 1, "f": 1.5, "s": "ä", "b": True, "list": [1, None, 3], "empty": {}}]),
        ("kv", "list", [{"prefix": "a", "limit": 2}]),
        ("kv", "get", ["x", None, None]),
    ]


def test_results_come_back_as_lua_values(run):
    host = Recorder({
        "get": {"a": [1, None, {"b": "c"}], "n": None, "f": 2.5, "big": 2**62},
        "list": {"keys": ["a", "b"], "cursor": None},
        "delete": True,
        "incr": 5,
        "set": None,
    })
    outcome = run(
        "local v = kv.get('k') local l = kv.list{} "
        "return {v.a[1], v.a[2] == json.null, v.a[3].b, v.n == json.null, v.f, v.big, "
        "#l.keys, l.cursor == json.null, kv.delete('k'), kv.incr('c'), kv.set('k', 1) == nil}",
        host_api=KV,
        host=host,
    )
    assert body_json(outcome) == [1, True, "c", True, 2.5, 2**62, 2, True, True, 5, True]


def test_bytes_results_become_lua_strings(run):
    outcome = run("return #kv.get('k')", host_api=KV, host=Recorder({"get": b"\xff\x00\x01"}))
    assert body_json(outcome) == 3


def test_host_error_is_a_catchable_lua_error(run):
    def host(module, fn, args):
        raise HostError("value too large")

    outcome = run(
        "local ok, e = pcall(kv.set, 'k', 1) "
        "local ok2, e2 = pcall(function() kv.set('k', 2) end) "
        "return {ok, e, ok2, e2}",
        host_api=KV,
        host=host,
    )
    assert body_json(outcome) == [False, "value too large", False, "main:1: value too large"]


def test_uncaught_host_error_is_a_script_error(run):
    def host(module, fn, args):
        raise HostError("no such collection")

    outcome = run("local x = 1\nkv.get('k')", host_api=KV, host=host)
    assert outcome.status is Status.SCRIPT_ERROR
    assert outcome.error == {"message": "no such collection", "line": 2}


def test_other_host_exceptions_are_internal_errors(run, caplog):
    def host(module, fn, args):
        raise RuntimeError("database is down")

    with caplog.at_level(logging.ERROR):
        outcome = run(
            "local ok, e = pcall(kv.get, 'k') log.info('caught', e) return 'went on'",
            host_api=KV,
            host=host,
        )
    assert outcome.status is Status.INTERNAL_ERROR
    assert outcome.error["message"] == "host function kv.get failed"
    assert "database is down" in caplog.text
    assert not any("caught" in message for _, message, _ in outcome.logs)


def test_unencodable_host_result_is_an_internal_error(run):
    outcome = run("return kv.get('k')", host_api=KV, host=Recorder({"get": object()}))
    assert outcome.status is Status.INTERNAL_ERROR


def test_arguments_that_json_cannot_hold_are_a_catchable_error(run):
    outcome = run(
        "local ok, e = pcall(kv.set, 'k', print) return e", host_api=KV, host=Recorder()
    )
    assert "kv.set: argument #2: cannot encode a function" in body_text(outcome)


def test_host_calls_count_toward_the_timeout(run):
    def slow(module, fn, args):
        time.sleep(0.3)

    started = time.monotonic()
    outcome = run("while true do kv.get('k') end", host_api=KV, host=slow, timeout=1, max_instructions=10**8)
    assert outcome.status is Status.TIMEOUT
    assert time.monotonic() - started < 2


def test_large_results_respect_the_memory_limit(run):
    outcome = run(
        "local v = kv.get('k') return #v",
        host_api=KV,
        host=Recorder({"get": "x" * 3_000_000}),
        max_memory_bytes=1_000_000,
        max_string_bytes=4_000_000,
    )
    assert outcome.limit == "max_memory_bytes"


def test_results_are_bounded_by_the_string_and_table_limits(run):
    outcome = run("kv.get('k')", host_api=KV, host=Recorder({"get": "x" * 2000}), max_string_bytes=1000)
    assert outcome.limit == "max_string_bytes"
    outcome = run("kv.get('k')", host_api=KV, host=Recorder({"get": list(range(200))}), max_table_entries=100)
    assert outcome.limit == "max_table_entries"


def test_globals_arrive_as_lua_values(run):
    outcome = run(
        "return {request.method, request.headers['x-a'], #request.body, request.json == nil, "
        "request.list[2] == json.null, ctx.principal == nil, ctx.app.id}",
        globals={
            "request": {"method": "POST", "headers": {"x-a": "1"}, "body": b"\xff\xfe", "json": None,
                        "list": [1, None]},
            "ctx": {"app": {"id": 3}, "principal": None},
        },
    )
    assert body_json(outcome) == ["POST", "1", 2, True, True, True, 3]


def test_globals_nested_too_deeply_are_an_internal_error(run):
    deep = []
    for _ in range(300):
        deep = [deep]
    outcome = run("return 1", globals={"request": {"json": deep}})
    assert outcome.status is Status.INTERNAL_ERROR
    assert "nested" in outcome.error["message"]
