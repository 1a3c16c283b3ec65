"""The script environment of docs/api.md §8, and attempts to get out of it."""
import pytest

from picloud.sandbox import Status

from .jobs import body_json, body_text

REMOVED = [
    "python", "package", "debug", "io", "dofile", "loadfile", "_G",
    "rawlen_not_a_thing", "module", "setfenv", "getfenv", "newproxy", "warn", "jit", "unpack",
]
PRESENT = [
    "request", "ctx", "log", "json", "string", "table", "math", "utf8", "coroutine", "os",
    "pairs", "ipairs", "pcall", "xpcall", "error", "select", "type", "tostring", "tonumber",
    "setmetatable", "getmetatable", "rawget", "rawset", "rawequal", "rawlen", "next",
    "assert", "load", "collectgarbage", "print",
    "http", "secrets", "crypto", "encoding", "time", "require",
]


def test_environment_has_exactly_the_documented_globals(run):
    outcome = run(
        "local names = {} for k in pairs(_ENV) do names[#names + 1] = k end "
        "table.sort(names) return names",
        globals={"request": {"path": "/"}, "ctx": {}},
    )
    assert sorted(body_json(outcome)) == sorted(PRESENT)


@pytest.mark.parametrize("name", REMOVED)
def test_removed_global_is_absent(run, name):
    assert body_json(run(f"return {name} == nil")) is True


def test_os_has_only_time_clock_and_date(run):
    names = body_json(run("local n = {} for k in pairs(os) do n[#n + 1] = k end table.sort(n) return n"))
    assert names == ["clock", "date", "time"]


def test_os_exit_and_execute_are_absent(run):
    assert body_json(run("return {os.exit == nil, os.execute == nil, os.getenv == nil, io == nil}")) == [
        True, True, True, True,
    ]


def test_require_python_fails(run):
    # require() asks the host for a script of the app by that name: never a library.
    outcome = run(
        "return require('python')",
        host=lambda module, fn, args: None,
        host_api=(("modules", ("source",)),),
    )
    assert outcome.status is Status.SCRIPT_ERROR
    assert "module 'python' not found" in outcome.error["message"]


def test_string_dump_is_absent(run):
    assert body_json(run("return {string.dump == nil, ('x').dump == nil}")) == [True, True]


def test_binary_chunks_cannot_be_loaded(run):
    outcome = run(r'local f, err = load("\27Lua\84\0\25\147\r\n\26\n") return {f == nil, err}')
    assert body_json(outcome) == [True, "attempt to load a binary chunk (mode is 't')"]


def test_load_with_explicit_binary_mode_is_still_text_only(run):
    outcome = run(r'local f, err = load("\27Lua", "x", "b") return err')
    assert "binary" in body_text(outcome)


def test_load_uses_the_script_environment_by_default(run):
    assert body_json(run("shared = 41 return load('return shared + 1')()")) == 42


def test_load_with_an_explicit_environment(run):
    assert body_json(run("local f = load('return x', 'chunk', 't', {x = 7}) return f()")) == 7


def test_load_of_a_chunk_that_does_not_compile_returns_the_error(run):
    outcome = run("local f, err = load('x = = 1', '=piece') return err")
    assert body_text(outcome) == "piece:1: unexpected symbol near '='"


def test_passed_values_are_plain_tables(run):
    outcome = run(
        "return {type(request), type(request.headers), getmetatable(request) == nil, "
        "request.headers.__class__ == nil, type(ctx.app)}",
        globals={"request": {"headers": {"accept": "*/*"}}, "ctx": {"app": {"id": 1}}},
    )
    assert body_json(outcome) == ["table", "table", True, True, "table"]


def test_error_objects_are_lua_values(run):
    outcome = run(
        "local ok, e = pcall(function() local x = nil; return x.y end) "
        "local ok2, e2 = pcall(error, {code = 7}) "
        "return {type(e), type(e2), e2.code}"
    )
    assert body_json(outcome) == ["string", "table", 7]


def test_host_errors_are_strings_not_python_objects(run):
    def host(module, fn, args):
        raise ValueError("boom")

    outcome = run(
        "local ok, e = pcall(kv.get, 'k') return {ok, type(e)}",
        host_api=(("kv", ("get",)),),
        host=host,
    )
    # A non-HostError ends the run; it never reaches the script as a Python object.
    assert outcome.status is Status.INTERNAL_ERROR


def test_gc_metamethods_are_refused(run):
    outcome = run("setmetatable({}, {__gc = function() end})")
    assert outcome.status is Status.SCRIPT_ERROR
    assert "__gc" in outcome.error["message"]


def test_gc_added_after_setmetatable_is_never_called(run):
    outcome = run(
        "local mt = {} setmetatable({}, mt) mt.__gc = function() while true do end end "
        "return 'ok'"
    )
    assert outcome.status is Status.OK


def test_collectgarbage_allows_only_count(run):
    assert body_text(run("return type(collectgarbage('count'))")) == "number"
    for option in ("collect", "stop", "step", "incremental"):
        outcome = run(f"return collectgarbage('{option}')")
        assert outcome.status is Status.SCRIPT_ERROR, option
    assert run("return collectgarbage()").status is Status.SCRIPT_ERROR


def test_string_metatable_poisoning_does_not_leak_into_the_next_run(pool, run):
    poisoned = run("getmetatable('').__index = function() return function() return 'poison' end end "
                   "return ('x'):upper()")
    assert poisoned.response.body == b"poison"
    for _ in range(pool.size * 2):
        assert run("return ('x'):upper()").response.body == b"X"


def test_globals_set_by_one_run_are_invisible_to_the_next(pool, run):
    run("leaked = 'secret' string.leaked = 1 table.insert = nil")
    for _ in range(pool.size * 2):
        assert body_json(run("return {leaked == nil, string.leaked == nil, table.insert ~= nil}")) == [
            True, True, True,
        ]


def test_method_calls_on_strings_meet_the_guarded_library(run):
    outcome = run("return ('x'):rep(2^40)")
    assert outcome.status is Status.LIMIT_EXCEEDED
    assert outcome.limit == "max_string_bytes"


def test_print_and_log_are_captured_with_levels(run):
    outcome = run(
        "print('hello', 1, nil, true) log.info('i') log.warn('w', 2) log.error('e') return 1"
    )
    assert [(level, message) for level, message, _ in outcome.logs] == [
        ("info", "hello 1 nil true"),
        ("info", "i"),
        ("warn", "w 2"),
        ("error", "e"),
    ]
    assert all(isinstance(at, float) and at > 1e9 for _, _, at in outcome.logs)


def test_log_uses_tostring_metamethods(run):
    outcome = run("log.info(setmetatable({}, {__tostring = function() return 'custom' end}), json.null)")
    assert outcome.logs[0][1] == "custom null"


def test_log_text_is_made_displayable(run):
    outcome = run(r"log.info('bad \255 byte and \1 control, tab\tand\nnewline')")
    assert outcome.logs[0][1] == "bad \ufffd byte and \ufffd control, tab\tand\nnewline"


def test_usage_is_reported(run):
    outcome = run("local t = {} for i = 1, 10000 do t[i] = i end return #t")
    assert 10_000 < outcome.usage["instructions"] < 100_000
    assert outcome.usage["memory_peak_bytes"] > 100_000
    assert outcome.duration_ms > 0


def test_standard_library_works(run):
    outcome = run(
        "local t = {3, 1, 2} table.sort(t) "
        "return {table.concat(t, ','), string.format('%05.1f|%s', 3.14159, 'x'), "
        "(string.gsub('hello', 'l', 'L')), select('#', 1, 2, 3), math.max(1, 5), "
        "utf8.char(228), string.upper('a'), tostring(12), tonumber('0x10'), "
        "#string.rep('ab', 3, '-'), string.byte('A'), os.date('!%Y-%m-%d', 0), "
        "math.type(1), rawlen({1, 2}), rawequal(t, t), next({}) == nil}"
    )
    assert body_json(outcome) == [
        "1,2,3", "003.1|x", "heLLo", 3, 5, "ä", "A", "12", 16, 8, 65, "1970-01-01",
        "integer", 2, True, True,
    ]


def test_pcall_xpcall_and_error_behave_like_lua(run):
    outcome = run(
        "local a = {pcall(error, 'x', 0)} "
        "local b = {pcall(function() error('y') end)} "
        "local c = {xpcall(function() error('z', 0) end, function(m) return 'handled ' .. m end)} "
        "local d = {pcall(function(...) return ... end, 1, 2)} "
        "local ok, e = pcall(assert, false, 'why') "
        "return {a, b, c, d, e}"
    )
    assert body_json(outcome) == [
        [False, "x"], [False, "main:1: y"], [False, "handled z"], [True, 1, 2], "why",
    ]


def test_library_errors_point_at_the_script_line(run):
    outcome = run("local x = 1\nlocal s = string.rep()")
    assert outcome.status is Status.SCRIPT_ERROR
    assert outcome.error["line"] == 2
    assert outcome.error["message"].startswith("bad argument #1 to")
    assert "[sandbox]" not in outcome.error["message"]


def test_coroutines_work(run):
    outcome = run(
        "local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end) "
        "local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end) "
        "local _, x = coroutine.resume(co, 1) local _, y = coroutine.resume(co, 10) "
        "return {gen(), gen(), gen(), x, y, coroutine.status(co)}"
    )
    assert body_json(outcome) == [1, 2, 3, 2, 20, "dead"]


def test_error_inside_a_wrapped_coroutine_propagates(run):
    outcome = run("local f = coroutine.wrap(function() error('inner') end) "
                  "local ok, e = pcall(function() f() end) return e")
    # Like Lua's own wrap: the caller's position is added to a string error.
    assert body_text(outcome) == "main:1: main:1: inner"


def test_os_clock_counts_this_execution_only(run):
    outcome = run("local started = os.clock() local x = 0 for i = 1, 1e6 do x = x + i end "
                  "return {started, os.clock() > started}", max_instructions=10**8)
    started, advanced = body_json(outcome)
    assert 0 <= started < 0.05
    assert advanced is True
