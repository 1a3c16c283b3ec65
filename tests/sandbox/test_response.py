"""A script's return value becomes the response (docs/api.md §6)."""
import json

import pytest

from picloud.sandbox import Status

TEXT = ("Content-Type", "text/plain; charset=utf-8")
JSON = ("Content-Type", "application/json")


def test_string_is_plain_text(run):
    response = run("return 'Hello from PiCloud!'").response
    assert (response.status, response.headers, response.body) == (200, (TEXT,), b"Hello from PiCloud!")


def test_binary_string_is_sent_as_is(run):
    assert run(r"return '\0\255\1'").response.body == b"\x00\xff\x01"


def test_nil_is_no_content(run):
    for source in ("return nil", "local x = 1", ""):
        response = run(source).response
        assert (response.status, response.headers, response.body) == (204, (), b"")


@pytest.mark.parametrize("value, body", [
    ("42", b"42"), ("-1.5", b"-1.5"), ("true", b"true"), ("false", b"false"), ("2^53", b"9007199254740992"),
    ("0.1", b"0.1"), ("1/3", b"0.3333333333333333"), ("math.maxinteger", b"9223372036854775807"),
])
def test_number_or_boolean_is_json(run, value, body):
    response = run(f"return {value}").response
    assert (response.status, response.headers) == (200, (JSON,))
    assert response.body == body


def test_table_is_json(run):
    response = run("return {name = 'x', list = {1, 2, {3}}, empty = {}, flag = false}").response
    assert (response.status, response.headers) == (200, (JSON,))
    assert json.loads(response.body) == {"name": "x", "list": [1, 2, [3]], "empty": {}, "flag": False}


def test_only_the_first_return_value_counts(run):
    assert run("return 'a', 'b'").response.body == b"a"


def test_response_table_with_string_body(run):
    response = run("return {status = 201, headers = {['X-Id'] = '7'}, body = 'made'}").response
    assert response.status == 201
    assert response.headers == (("X-Id", "7"), TEXT)
    assert response.body == b"made"


def test_response_table_with_table_body_is_json(run):
    response = run("return {status = 404, body = {error = 'none'}}").response
    assert (response.status, response.headers) == (404, (JSON,))
    assert json.loads(response.body) == {"error": "none"}


def test_response_table_keeps_its_own_content_type(run):
    response = run("return {status = 200, headers = {['content-type'] = 'text/html'}, body = '<p>'}").response
    assert response.headers == (("content-type", "text/html"),)


def test_response_table_without_body(run):
    response = run("return {status = 302, headers = {Location = '/new'}}").response
    assert (response.status, response.headers, response.body) == (302, (("Location", "/new"),), b"")


def test_repeated_header_from_a_list(run):
    response = run("return {status = 200, headers = {['Set-Cookie'] = {'a=1', 'b=2'}}, body = ''}").response
    assert response.headers[:2] == (("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"))


def test_integer_header_value_is_allowed(run):
    response = run("return {status = 200, headers = {['X-Count'] = 3}}").response
    assert response.headers == (("X-Count", "3"),)


def test_integral_float_status_is_accepted(run):
    assert run("return {status = 200.0}").response.status == 200


def test_status_field_makes_a_response_even_in_a_json_like_table(run):
    assert run("return {status = 418}").response.status == 418


@pytest.mark.parametrize("source, reason", [
    ("return {status = 99}", "status"),
    ("return {status = 600}", "status"),
    ("return {status = 200.5}", "status"),
    ("return {status = '200'}", "status"),
    ("return {status = 200, headers = {['Bad Name'] = 'x'}}", "header"),
    ("return {status = 200, headers = {['X-A'] = 'a\\r\\nInjected: 1'}}", "control character"),
    ("return {status = 200, headers = {['X-A'] = 'a\\0'}}", "control character"),
    ("return {status = 200, headers = {['X-A'] = true}}", "header"),
    ("return {status = 200, headers = 'x'}", "headers"),
    ("return {status = 200, body = print}", "body"),
    ("return print", "function"),
    ("return coroutine.create(print)", "thread"),
    ("local t = {} t.self = t return t", "contains itself"),
    ("return {status = 200, body = {0/0}}", "NaN"),
    ("return {1/0}", "infinity"),
    ("return {-1/0}", "infinity"),
    ("return {'\\255'}", "UTF-8"),
    ("return {utf8.char(0xD800)}", "UTF-8"),
    ("return {[utf8.char(0x110000)] = 1}", "UTF-8"),
    ("return {[true] = 1}", "key"),
    ("return {[1.5] = 1}", "key"),
    ("return {f = function() end}", "function"),
])
def test_invalid_return_value_is_a_bad_response(run, source, reason):
    outcome = run(source)
    assert outcome.status is Status.BAD_SCRIPT_RESPONSE, outcome
    assert outcome.response is None
    assert reason in outcome.error["message"]


def test_response_mapping_runs_no_metamethods(run):
    outcome = run(
        "local called = false "
        "local t = setmetatable({status = 200, body = 'plain'}, {"
        "  __index = function() called = true return 'x' end,"
        "  __pairs = function() called = true return next, {} end,"
        "  __len = function() called = true return 99 end}) "
        "return t"
    )
    assert outcome.response.body == b"plain"


def test_json_body_iteration_is_raw(run):
    outcome = run("return setmetatable({1, 2}, {__index = function() return 'no' end, __len = function() return 9 end})")
    assert json.loads(outcome.response.body) == [1, 2]


def test_script_error_has_message_and_line(run):
    outcome = run("local x = 1\n\nerror('it broke')")
    assert outcome.status is Status.SCRIPT_ERROR
    assert outcome.error == {"message": "it broke", "line": 3}
    assert outcome.response is None


def test_runtime_error_has_message_and_line(run):
    outcome = run("local t = nil\nreturn t.x")
    assert outcome.error["line"] == 2
    assert "attempt to index a nil value" in outcome.error["message"]


def test_error_without_position(run):
    # The message has no position, the runner still knows the line.
    assert run("error('bare', 0)").error == {"message": "bare", "line": 1}


def test_error_with_a_table_value(run):
    assert run("error({code = 1})").error["message"] == "(error object is a table value)"


def test_long_error_message_is_truncated(run):
    outcome = run("error(string.rep('x', 100000), 0)")
    assert 1000 < len(outcome.error["message"]) <= 4096


def test_compile_error_at_run_is_a_script_error_with_line(run):
    outcome = run("local a = 1\nlocal b = \n")
    assert outcome.status is Status.SCRIPT_ERROR
    assert outcome.error["line"] == 3
    assert "unexpected symbol" in outcome.error["message"]


def test_chunk_name_does_not_leak_into_messages(run):
    outcome = run("error('x')", chunk_name="my script/äö")
    assert outcome.error == {"message": "x", "line": 1}
