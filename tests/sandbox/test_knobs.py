"""Each sandbox knob: just under succeeds, just over stops the run and names the knob.

A limit ends the run whatever the script does: pcall, xpcall handlers, coroutines
and code after the catch never get to carry on.
"""
import pytest

from picloud.sandbox import Status

from .jobs import body_json, body_text

# Ways to try and swallow a limit; %s is the offending code.
SWALLOWERS = {
    "pcall": "local ok, e = pcall(function() %s end) log.info('swallowed', e) return 'survived'",
    "nested pcall": "for i = 1, 3 do pcall(pcall, function() %s end) end return 'survived'",
    "xpcall": "xpcall(function() %s end, function(e) return e end) return 'survived'",
    "xpcall handler": (
        "xpcall(function() error('x') end, function(e) %s end) return 'survived'"
    ),
    "coroutine.resume": (
        "local co = coroutine.create(function() %s end) "
        "local ok, e = coroutine.resume(co) return 'survived'"
    ),
    "pcall inside a coroutine": (
        "local co = coroutine.create(function() pcall(function() %s end) coroutine.yield(1) end) "
        "coroutine.resume(co) return 'survived'"
    ),
    "coroutine.wrap under pcall": (
        "pcall(coroutine.wrap(function() %s end)) return 'survived'"
    ),
    "load reader": (
        "local n = 0 load(function() n = n + 1 if n == 1 then %s end return nil end) "
        "return 'survived'"
    ),
    "__close handler": (
        "pcall(function() local x <close> = setmetatable({}, {__close = function() end}) %s end) "
        "return 'survived'"
    ),
}

OFFENDERS = {
    "max_instructions": ("while true do end", {"max_instructions": 200_000}),
    "max_memory_bytes": (
        "local t = {} for i = 1, 1e8 do t[i] = tostring(i) end", {"max_memory_bytes": 2_000_000},
    ),
    "max_call_depth": (
        "local function f(n) local x = 0 for i = 1, 1000 do x = x + i end return f(n + 1) + 1 end f(1)",
        {"max_call_depth": 50},
    ),
    "max_string_bytes": ("local s = string.rep('x', 2000)", {"max_string_bytes": 1000}),
    "max_table_entries": (
        "local t = {} for i = 1, 200 do t['k' .. i] = i end json.encode(t)",
        {"max_table_entries": 100},
    ),
    "max_output_bytes": ("for i = 1, 100 do log.info(string.rep('x', 100)) end", {"max_output_bytes": 5000}),
}


@pytest.mark.parametrize("knob", list(OFFENDERS))
def test_offending_code_names_its_knob(run, knob):
    code, limits = OFFENDERS[knob]
    outcome = run(code, **limits)
    assert outcome.status is Status.LIMIT_EXCEEDED
    assert outcome.limit == knob
    assert knob in outcome.error["message"] or str(limits[knob]) in outcome.error["message"]


@pytest.mark.parametrize("knob", list(OFFENDERS))
@pytest.mark.parametrize("swallower", list(SWALLOWERS))
def test_no_limit_can_be_swallowed(run, knob, swallower):
    code, limits = OFFENDERS[knob]
    outcome = run(SWALLOWERS[swallower] % code, **limits)
    assert outcome.status is Status.LIMIT_EXCEEDED, outcome
    assert outcome.limit == knob
    assert all("swallowed" not in message for _, message, _ in outcome.logs)


def test_infinite_loop_inside_coroutine_wrap_is_stopped(run):
    outcome = run("coroutine.wrap(function() while true do end end)()", max_instructions=100_000)
    assert outcome.limit == "max_instructions"


def test_infinite_loop_in_a_coroutine_inside_a_coroutine_is_stopped(run):
    outcome = run(
        "coroutine.wrap(function() coroutine.wrap(function() while true do end end)() end)()",
        max_instructions=100_000,
    )
    assert outcome.limit == "max_instructions"


def test_script_raising_the_memory_message_itself_is_a_script_error(run):
    outcome = run("error('not enough memory', 0)")
    assert outcome.status is Status.SCRIPT_ERROR
    outcome = run("local ok, e = pcall(error, 'not enough memory', 0) return e")
    assert body_text(outcome) == "not enough memory (raised by the script)"


# --- max_instructions


def test_loop_under_the_instruction_limit_succeeds(run):
    outcome = run("local x = 0 for i = 1, 10000 do x = x + i end return x", max_instructions=100_000)
    assert body_json(outcome) == 50005000
    assert outcome.usage["instructions"] <= 100_000


def test_instruction_limit_is_exact(run):
    # Each iteration of this loop is 2 VM instructions (FORLOOP + ADD).
    template = "local x = 0 for i = 1, {n} do x = x + 1 end return x"
    assert run(template.format(n=49_000), max_instructions=100_000).status is Status.OK
    over = run(template.format(n=51_000), max_instructions=100_000)
    assert over.limit == "max_instructions"
    assert over.usage["instructions"] == 100_001


def test_instructions_report_the_line(run):
    outcome = run("local x = 0\nwhile true do\n  x = x + 1\nend", max_instructions=10_000)
    assert outcome.error["line"] in (2, 3)


def test_c_work_is_charged_to_the_instruction_budget(run):
    outcome = run("return table.move({}, 1, math.maxinteger, 2)")
    assert outcome.limit == "max_instructions"
    outcome = run("return table.concat(setmetatable({}, {__index = type}), '', 1, 2^40)")
    assert outcome.limit == "max_instructions"
    outcome = run(
        "table.sort(setmetatable({}, {__len = function() return 2^31 - 2 end}), rawequal)"
    )
    assert outcome.limit == "max_instructions"


def test_huge_empty_rep_returns_at_once(run):
    outcome = run("return #string.rep('', math.maxinteger) + #string.rep('', 2^50, '')")
    assert body_json(outcome) == 0


def test_insert_on_table_with_c_length_is_bounded(run):
    outcome = run(
        "local t = setmetatable({}, {__len = function() return 2^40 end}) table.insert(t, 1, 'x')",
        max_instructions=1_000_000,
    )
    assert outcome.limit == "max_instructions"


# --- max_memory_bytes


def test_allocation_under_the_memory_limit_succeeds(run):
    outcome = run("local t = {} for i = 1, 10000 do t[i] = i end return #t", max_memory_bytes=2_000_000)
    assert body_json(outcome) == 10000
    assert 100_000 < outcome.usage["memory_peak_bytes"] < 2_000_000


def test_memory_limit_is_reported_with_the_peak(run):
    outcome = run("local s = {} for i = 1, 1e7 do s[i] = i end", max_memory_bytes=1_000_000)
    assert outcome.limit == "max_memory_bytes"
    assert outcome.usage["memory_peak_bytes"] <= 1_000_000


def test_one_huge_allocation_hits_the_memory_limit(run):
    outcome = run("local s = string.rep('x', 4000000)", max_memory_bytes=1_000_000, max_string_bytes=8_000_000)
    assert outcome.limit == "max_memory_bytes"


def test_concatenation_is_bounded_by_memory(run):
    outcome = run("local s = 'x' while true do s = s .. s end", max_memory_bytes=4_000_000)
    assert outcome.limit == "max_memory_bytes"


# --- max_call_depth
# `return f(n - 1) + 1` is not a tail call: each level is one more frame.
DEPTH = (
    "local function f(n) if n == 0 then local x = 0 for i = 1, 20000 do x = x + i end return 0 end "
    "return f(n - 1) + 1 end local r = f({n}) return r"
)


def test_recursion_at_the_depth_limit_succeeds(run):
    # The main chunk is one frame: f(49) .. f(0) make 51 in all.
    assert body_json(run(DEPTH.format(n=48), max_call_depth=50)) == 48


def test_recursion_one_deeper_than_the_limit_fails(run):
    outcome = run(DEPTH.format(n=49), max_call_depth=50)
    assert outcome.limit == "max_call_depth"
    assert outcome.error["line"] == 1


def test_runaway_recursion_is_stopped(run):
    outcome = run("local function f() return 1 + f() end return f()")
    assert outcome.limit == "max_call_depth"


def test_call_depth_counts_inside_coroutines(run):
    source = (
        "local function f(n) if n == 0 then local x = 0 for i = 1, 20000 do x = x + i end return 0 end "
        "return f(n - 1) + 1 end "
        "local r = coroutine.wrap(function() local v = f({n}) return v end)() return r"
    )
    assert body_json(run(source.format(n=40), max_call_depth=50)) == 40
    assert run(source.format(n=60), max_call_depth=50).limit == "max_call_depth"


# --- max_string_bytes


def test_string_at_the_limit_succeeds(run):
    assert body_json(run("return #string.rep('ab', 500)", max_string_bytes=1000)) == 1000


@pytest.mark.parametrize("code", [
    "string.rep('ab', 501)",
    "string.rep('a', 501, ',')",
    "string.format('%s%s', string.rep('a', 600), string.rep('b', 600))",
    "table.concat({string.rep('a', 600), string.rep('b', 600)})",
    "string.gsub(string.rep('a', 600), 'a', 'bb')",
    "json.encode({string.rep('a', 600), string.rep('b', 600)})",
    "string.char(table.unpack((function() local t = {} for i = 1, 1200 do t[i] = 65 end return t end)()))",
])
def test_library_functions_check_the_string_limit(run, code):
    outcome = run(f"local s = {code} return #s", max_string_bytes=1000)
    assert outcome.limit == "max_string_bytes", code


def test_strings_leaving_the_sandbox_are_checked(run):
    big = "local s = string.rep('a', 600) .. string.rep('b', 600) "
    assert run(big + "return s", max_string_bytes=1000).limit == "max_string_bytes"
    assert run(big + "log.info(s)", max_string_bytes=1000).limit == "max_string_bytes"
    assert run(big + "return {s}", max_string_bytes=1000).limit == "max_string_bytes"


def test_strings_entering_the_sandbox_are_checked(run):
    outcome = run("return 1", globals={"request": {"body": "x" * 2000}}, max_string_bytes=1000)
    assert outcome.limit == "max_string_bytes"


# --- max_table_entries


def test_table_at_the_entry_limit_leaves_the_sandbox(run):
    outcome = run("local t = {} for i = 1, 100 do t[i] = i end return t", max_table_entries=100)
    assert len(body_json(outcome)) == 100


@pytest.mark.parametrize("code", [
    "return t",
    "return {status = 200, body = t}",
    "return {{t}}",
    "json.encode(t)",
    "kv.set('k', t)",
])
def test_tables_leaving_the_sandbox_are_bounded(run, code):
    outcome = run(
        "local t = {} for i = 1, 101 do t[i] = i end " + code,
        max_table_entries=100,
        host_api=(("kv", ("set",)),),
        host=lambda module, fn, args: None,
    )
    assert outcome.limit == "max_table_entries", code


def test_decoded_json_is_bounded(run):
    outcome = run("return json.decode('[' .. string.rep('1,', 200) .. '1]')", max_table_entries=100)
    assert outcome.limit == "max_table_entries"


def test_tables_inside_the_sandbox_are_not_counted(run):
    outcome = run("local t = {} for i = 1, 1000 do t[i] = i end return #t", max_table_entries=10)
    assert body_json(outcome) == 1000


def test_log_lines_count_as_table_entries(run):
    assert run("for i = 1, 50 do log.info(i) end", max_table_entries=50).status is Status.OK
    assert run("for i = 1, 51 do log.info(i) end", max_table_entries=50).limit == "max_table_entries"


# --- max_output_bytes


def test_output_under_the_limit_succeeds(run):
    outcome = run("log.info(string.rep('x', 400)) return string.rep('y', 600)", max_output_bytes=1000)
    assert len(outcome.response.body) == 600


def test_response_body_over_the_output_limit(run):
    outcome = run("return string.rep('y', 1001)", max_output_bytes=1000)
    assert outcome.limit == "max_output_bytes"


def test_json_response_over_the_output_limit(run):
    outcome = run("local t = {} for i = 1, 300 do t[i] = 'abcd' end return t", max_output_bytes=1000)
    assert outcome.limit == "max_output_bytes"


def test_logs_and_body_share_the_output_limit(run):
    outcome = run("log.info(string.rep('x', 500)) return string.rep('y', 501)", max_output_bytes=1000)
    assert outcome.limit == "max_output_bytes"
    assert outcome.logs and outcome.logs[0][1] == "x" * 500
