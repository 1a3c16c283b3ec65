"""json.encode / json.decode / json.null inside scripts."""
import json

import pytest

from picloud.sandbox import Status

from .jobs import body_json, body_text


def test_round_trip_keeps_values(run):
    outcome = run(
        "local text = '{\"a\":[1,2.5,\"x\",true,false,null,{\"b\":{}}],\"u\":\"\\\\u00e4\\\\ud83d\\\\ude00\"}' "
        "local v = json.decode(text) "
        "return {v.a[1], v.a[2], v.a[3], v.a[4], v.a[5], v.a[6] == json.null, #v.a, v.u, "
        "json.decode(json.encode(v)).u == v.u}"
    )
    assert body_json(outcome) == [1, 2.5, "x", True, False, True, 7, "ä😀", True]


def test_null_keeps_array_positions(run):
    outcome = run("local v = json.decode('[1,null,3]') return {#v, v[2] == json.null, json.encode(v)}")
    assert body_json(outcome) == [3, True, "[1,null,3]"]


def test_null_in_objects_and_at_the_top(run):
    outcome = run("local v = json.decode('{\"a\":null}') return {v.a == json.null, json.decode('null') == json.null}")
    assert body_json(outcome) == [True, True]


def test_encode_shapes(run):
    outcome = run(
        "return {json.encode({}), json.encode({1, 2}), json.encode({[1] = 'a', [3] = 'c'}), "
        "json.encode({x = 1}), json.encode('q\"\\\\\\n\\1'), json.encode(nil), json.encode(json.null), "
        "json.encode(3), json.encode(0.5), json.encode(-0.0)}"
    )
    assert body_json(outcome) == [
        "{}", "[1,2]", '{"1":"a","3":"c"}', '{"x":1}', '"q\\"\\\\\\n\\u0001"', "null", "null",
        "3", "0.5", "-0",
    ]


def test_encoded_text_is_valid_json(run):
    outcome = run("return json.encode({a = {1, {b = 'ä'}}, ['k\\n'] = 1.25e-7})")
    assert json.loads(body_text(outcome)) == {"a": [1, {"b": "ä"}], "k\n": 1.25e-07}


def test_json_null_is_read_only(run):
    outcome = run("json.null.x = 1")
    assert outcome.status is Status.SCRIPT_ERROR
    assert "read-only" in outcome.error["message"]
    assert run("return getmetatable(json.null)").response.body == b"json.null"


@pytest.mark.parametrize("source, reason", [
    ("local t = {} t[1] = t return json.encode(t)", "contains itself"),
    ("return json.encode({0/0})", "NaN"),
    ("return json.encode(math.huge)", "infinity"),
    ("return json.encode(print)", "function"),
    ("return json.encode({'\\255'})", "UTF-8"),
    ("return json.encode({[{}] = 1})", "key"),
])
def test_encode_rejects_what_json_cannot_hold(run, source, reason):
    outcome = run(f"local ok, e = pcall(function() {source} end) return e")
    assert reason in body_text(outcome)


def test_shared_subtables_are_not_cycles(run):
    outcome = run("local s = {1} return json.encode({s, s, {s}})")
    assert body_text(outcome) == "[[1],[1],[[1]]]"


def test_deep_nesting_is_refused_cleanly(run):
    outcome = run(
        "local t = {} local c = t for i = 1, 1000 do c[1] = {} c = c[1] end "
        "local ok, e = pcall(json.encode, t) return e"
    )
    assert "nested" in body_text(outcome)
    outcome = run("local ok, e = pcall(json.decode, string.rep('[', 1000)) return e")
    assert "nested" in body_text(outcome)


@pytest.mark.parametrize("text", [
    "", "[", "{", "[1,]", "{\"a\"}", "{\"a\":}", "tru", "nul", "01", "1.", "-", "1e", "[1 2]",
    "\"unterminated", "\"bad \\x escape\"", "\"\\ud800\"", "\"tab\there\"", "[1] x", "{1:2}",
    "1e400", "'single'",
])
def test_decode_rejects_invalid_text(run, text):
    outcome = run("local ok, e = pcall(json.decode, ...) return {ok, e}".replace("...", _lua_string(text)))
    ok, message = body_json(outcome)
    assert ok is False
    assert message.startswith("main:1: json.decode:") or message.startswith("json.decode:")


def test_decode_rejects_invalid_utf8(run):
    outcome = run("local ok, e = pcall(json.decode, '\"\\255\"') return e")
    assert "UTF-8" in body_text(outcome)


def test_decode_numbers(run):
    outcome = run(
        "local v = json.decode('[0, -0, 12, -3.5, 1e3, 2E-2, 9007199254740993, 123456789012345678901]') "
        "return {math.type(v[1]), math.type(v[3]), v[4], v[5], v[6], math.type(v[7]), math.type(v[8])}"
    )
    assert body_json(outcome) == ["integer", "integer", -3.5, 1000, 0.02, "integer", "float"]


def test_decode_needs_a_string(run):
    assert run("json.decode({})").status is Status.SCRIPT_ERROR


def _lua_string(text):
    escaped = "".join(f"\\{ord(c)}" for c in text)
    return f'"{escaped}"'
