"""Hostile scripts over HTTP against a real server (docs/sandbox.md's threat classes and more).

Each attack is a script behind its own route of one app. The test requests it and
checks the outcome docs/api.md §6 prescribes (never a 500 or a hang), that nothing of the
host or of another app shows, and that the server still answers at once afterwards.
Scripts run with small limits so that each attack ends quickly.
"""
import json
import re
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import new_site
from tests.support.live import LiveServer, login

# Small knobs for every attack (one may raise or lower its own).
SMALL = {
    "max_instructions": 2_000_000,
    "max_memory_bytes": 8 * 1024 * 1024,
    "max_call_depth": 100,
    "max_string_bytes": 64 * 1024,
    "max_table_entries": 10_000,
    "max_output_bytes": 64 * 1024,
}
# The longest any request may take: the longest script timeout plus the kill and reply.
CLIENT_TIMEOUT = 10
# What a quick answer is, on a slow shared machine.
QUICK_SECONDS = 2
# Words of the host side that must never reach a caller or the execution log.
HOST_WORDS = re.compile(r"python|lupa|traceback|__class__|\.py\b|builtins|site-packages", re.IGNORECASE)
# Globals of an HTTP run (docs/api.md §8), host modules included.
GLOBALS = sorted(
    "request ctx kv docs log json string table math utf8 coroutine os print pairs ipairs next select type "
    "tostring tonumber rawget rawset rawequal rawlen getmetatable setmetatable pcall xpcall error assert "
    "load collectgarbage http secrets crypto encoding time require".split()
)
SPIN = "while true do end"
# A backtracking pattern: seconds of C with no VM instruction; only the timeout ends it.
BACKTRACK = "('a'):rep(400):find('.-.-.-b')"


@dataclass(frozen=True)
class Expect:
    """The outcome an attack must have: ``ok`` with a body, or a failed outcome's code."""

    code: str
    status: int
    body: object = None
    limit: str = None


def ok(body, status=200):
    return Expect("ok", status, body)


ERROR = Expect("script_error", 422)
BAD = Expect("bad_script_response", 502)
TIMEOUT = Expect("timeout", 504)


def limit(knob):
    return Expect("limit_exceeded", 507, limit=knob)


@dataclass(frozen=True)
class Attack:
    name: str
    source: str
    expect: Expect
    knobs: dict = field(default_factory=dict)
    timeout: int = 2
    # A piece of text the execution log's error message must hold.
    logged: str = None


def attack(name, source, expect, *, logged=None, timeout=2, **knobs):
    return pytest.param(Attack(name, source, expect, knobs, timeout, logged), id=name)


ATTACKS = [
    # Memory bombs: string.rep -----------------------------------------------------
    attack("rep_huge", "return ('x'):rep(1e9)", limit("max_string_bytes")),
    attack("rep_empty_maxinteger", "return #string.rep('', math.maxinteger)", ok(0)),
    attack("rep_empty_with_separator", "return #string.rep('', math.maxinteger, ',')", limit("max_string_bytes")),
    attack("rep_huge_separator", "return string.rep('a', 3, ('b'):rep(40000))", limit("max_string_bytes")),
    attack("rep_number_subject", "return string.rep(12345, 2^40)", limit("max_string_bytes")),
    attack("rep_count_as_string", "return string.rep('ab', '99999999999')", limit("max_string_bytes")),
    attack("rep_mininteger", "return string.rep('x', math.mininteger, 'y')", ok("")),
    attack("rep_retried_under_pcall", "for i = 1, 100 do pcall(string.rep, 'x', 1e12) end return 'escaped'",
           limit("max_string_bytes")),
    attack("rep_on_a_number_value", "return (5):rep(10)", ERROR),
    attack("concat_doubling", "local s = 'x' for i = 1, 40 do s = s .. s end return #s",
           limit("max_memory_bytes")),
    # string.format ----------------------------------------------------------------
    attack("format_wide_fields", "local t = {} for i = 1, 1000 do t[i] = 1 end "
           "return string.format(('%99d'):rep(1000), table.unpack(t))", limit("max_string_bytes")),
    attack("format_long_precision", "return #string.format('%.99f', 1e308) > 300", ok(True)),
    attack("format_width_over_two_digits", "return string.format('%100d', 1)", ERROR),
    attack("format_q_of_nul_bytes", "return string.format('%q', ('\\0'):rep(40000))", limit("max_string_bytes")),
    attack("format_q_of_a_table", "return string.format('%q', {})", ERROR),
    attack("format_s_spinning_tostring",
           f"return string.format('%s', setmetatable({{}}, {{__tostring = function() {SPIN} end}}))",
           limit("max_instructions")),
    attack("format_s_tostring_not_a_string",
           "return string.format('%s', setmetatable({}, {__tostring = function() return {} end}))", ERROR),
    attack("format_many_long_strings", "local s, t = ('x'):rep(60000), {} for i = 1, 200 do t[i] = s end "
           "return string.format(('%s'):rep(200), table.unpack(t))", limit("max_memory_bytes")),
    # string.pack / unpack ------------------------------------------------------------
    attack("pack_padding_bomb", "return string.pack('c2000000000', '')", limit("max_memory_bytes")),
    attack("pack_padding_over_max_string", "return #string.pack('c1000000', '')", limit("max_string_bytes")),
    attack("pack_many_wide_integers", "local t = {} for i = 1, 5000 do t[i] = 0 end "
           "return #string.pack(('i16'):rep(5000), table.unpack(t))", limit("max_string_bytes")),
    attack("unpack_length_prefix_lies", "return string.unpack('s8', string.pack('j', math.maxinteger))", ERROR),
    attack("unpack_position_out_of_string", "return string.unpack('i4', 'abcd', 100)", ERROR),
    attack("packsize_overflow", "return string.packsize(('c2000000000'):rep(10))", ERROR),
    attack("pack_integer_size", "return string.pack('i17', 1)", ERROR),
    attack("unpack_many_empty_strings", "return select('#', string.unpack(('c0'):rep(500000), ''))",
           ok(500001), max_string_bytes=1024 * 1024, max_memory_bytes=32 * 1024 * 1024),
    # table.concat ---------------------------------------------------------------------
    attack("concat_many_long_strings", "local t = {} for i = 1, 100 do t[i] = ('x'):rep(60000) .. i end "
           "return #table.concat(t)", limit("max_string_bytes"), max_memory_bytes=32 * 1024 * 1024),
    attack("concat_huge_separator", "local t = {} for i = 1, 1000 do t[i] = i end "
           "return #table.concat(t, ('x'):rep(60000))", limit("max_memory_bytes")),
    attack("concat_range_of_nils", "return table.concat({}, '', 1, math.maxinteger)", ERROR),
    attack("concat_lua_index_and_huge_len",
           "return table.concat(setmetatable({}, {__index = function() return 'x' end, "
           "__len = function() return 1e9 end}))", limit("max_instructions"), max_memory_bytes=32 * 1024 * 1024),
    attack("concat_c_function_index",
           "return table.concat(setmetatable({}, {__index = tostring, __len = function() return math.maxinteger end}))",
           limit("max_instructions"), max_memory_bytes=32 * 1024 * 1024),
    # table.unpack / select -------------------------------------------------------------
    attack("unpack_huge_range", "return select('#', table.unpack({}, 1, 1e8))", limit("max_instructions")),
    attack("unpack_whole_integer_range", "return table.unpack({}, math.mininteger, math.maxinteger)",
           limit("max_instructions")),
    attack("unpack_beyond_the_stack", "return select('#', table.unpack({}, 1, 1500000))", ERROR,
           max_instructions=5_000_000),
    attack("unpack_spinning_index",
           f"return table.unpack(setmetatable({{}}, {{__index = function() {SPIN} end}}), 1, 2)",
           limit("max_instructions")),
    attack("select_negative_huge", "return select(-1e9, 1)", ERROR),
    attack("select_maxinteger", "return select(math.maxinteger, 1, 2)", ok(None, 204)),
    # utf8 ----------------------------------------------------------------------------
    attack("utf8_char_many_arguments", "local t = {} for i = 1, 30000 do t[i] = 0x10FFFF end "
           "return #utf8.char(table.unpack(t))", limit("max_string_bytes")),
    attack("utf8_char_out_of_range", "return utf8.char(0x80000000)", ERROR),
    attack("utf8_char_invalid_in_json", "return {s = utf8.char(0x7FFFFFFF)}", BAD),
    attack("utf8_codes_of_invalid_text", "for _ in utf8.codes('\\xff') do end", ERROR),
    attack("utf8_len_huge_range", "return utf8.len('abc', 1, math.maxinteger)", ERROR),
    attack("utf8_offset_huge", "return tostring(utf8.offset(('x'):rep(60000), math.maxinteger))", ok("nil")),
    # gsub ------------------------------------------------------------------------------
    attack("gsub_spinning_function", f"return ('abc'):gsub('.', function() {SPIN} end)", limit("max_instructions")),
    attack("gsub_spinning_table_index",
           f"return ('abc'):gsub('.', setmetatable({{}}, {{__index = function() {SPIN} end}}))",
           limit("max_instructions")),
    attack("gsub_expanding_replacement", "return #(('x'):rep(60000):gsub('x', '%0%0%0%0%0%0%0%0%0%0'))",
           limit("max_string_bytes")),
    attack("gsub_function_returns_long_strings",
           "local s = ('y'):rep(60000) return #(('x'):rep(200):gsub('x', function() return s end))",
           limit("max_memory_bytes")),
    attack("gsub_invalid_capture_index", "return ('abc'):gsub('(a)', '%9')", ERROR),
    attack("gsub_replacement_is_a_table", "return ('abc'):gsub('.', function() return {} end)", ERROR),
    attack("gsub_yield_across_c", "return coroutine.wrap(function() "
           "return ('abc'):gsub('.', function() coroutine.yield() end) end)()", ERROR),
    # string.byte / string.char -------------------------------------------------------------
    attack("byte_whole_long_string", "return select('#', string.byte(('x'):rep(1000000), 1, -1))", ERROR,
           max_string_bytes=1024 * 1024),
    attack("byte_integer_extremes", "return select('#', string.byte('abc', math.mininteger, math.maxinteger))",
           ok(3)),
    attack("char_many_arguments", "local t = {} for i = 1, 70000 do t[i] = 65 end "
           "return string.char(table.unpack(t))", limit("max_string_bytes"), max_table_entries=100_000),
    attack("char_out_of_range", "return string.char(256)", ERROR),
    # os.date / os.time ---------------------------------------------------------------------
    attack("date_expanding_format", "return #os.date(('%c'):rep(20000))", limit("max_string_bytes")),
    attack("date_in_a_loop", "for i = 1, 1e5 do os.date(('%c'):rep(100)) end", limit("max_instructions")),
    attack("date_invalid_conversion", "return os.date('%Ez')", ERROR),
    attack("date_lone_percent", "return os.date('%')", ERROR),
    attack("date_time_out_of_range", "return os.date('*t', math.maxinteger)", ERROR),
    attack("time_year_out_of_range", "return os.time({year = 2^62, month = 1, day = 1})", ERROR),
    attack("time_missing_fields", "return os.time({})", ERROR),
    attack("time_spinning_index", f"return os.time(setmetatable({{}}, {{__index = function() {SPIN} end}}))",
           limit("max_instructions")),
    attack("time_field_not_an_integer", "return os.time({year = 2020, month = 'x', day = 1})", ERROR),
    # tostring / tonumber --------------------------------------------------------------------
    attack("tonumber_long_digits", "return math.type(tonumber('0x' .. ('f'):rep(60000)))", ok("integer")),
    attack("tonumber_base_out_of_range", "return tonumber('10', 99)", ERROR),
    attack("tostring_long_name", "return #tostring(setmetatable({}, {__name = ('x'):rep(60000)})) > 60000",
           ok(True)),
    attack("tostring_recursive_metamethod",
           "local t = setmetatable({}, {__tostring = function(t) return tostring(t) end}) return tostring(t)",
           limit("max_call_depth")),
    # CPU traps in C ----------------------------------------------------------------------------
    attack("backtracking_find", f"return {BACKTRACK}", TIMEOUT, timeout=1),
    attack("backtracking_match_captures", "return ('a'):rep(400):match('(.-)(.-)(.-)b')", TIMEOUT, timeout=1),
    attack("backtracking_gmatch", "for m in ('a'):rep(400):gmatch('.-.-.-b') do end", TIMEOUT, timeout=1),
    attack("backtracking_gsub", "return ('a'):rep(400):gsub('.-.-.-b', '')", TIMEOUT, timeout=1),
    attack("find_with_every_init", "local s = ('a'):rep(60000) for i = 1, #s do s:find('.-b', i) end",
           TIMEOUT, timeout=1),
    # One scan is about 1.8e9 steps, near a second on a fast CPU; a thousand of them are
    # beyond any CPU, so the run ends at its timeout however fast the machine is.
    attack("balanced_pattern_scan", "local s = ('('):rep(60000) for _ = 1, 1000 do s:find('%b()') end",
           TIMEOUT, timeout=1),
    attack("too_many_captures", "return ('a'):rep(40):match(('(a)'):rep(33))", ERROR),
    attack("pattern_too_complex", "return ('a'):rep(1000):match(('a?'):rep(1000) .. ('a'):rep(1000))", ERROR),
    attack("malformed_pattern", "return ('x'):find('[a')", ERROR),
    # table.sort ---------------------------------------------------------------------------------
    attack("sort_erroring_comparator", "table.sort({3, 2, 1}, function() error('no') end)", ERROR),
    attack("sort_inconsistent_comparator",
           "local t = {} for i = 1, 1000 do t[i] = i end table.sort(t, function() return true end)", ERROR),
    attack("sort_random_comparator", "local t = {} for i = 1, 1000 do t[i] = i end "
           "pcall(table.sort, t, function() return math.random() < 0.5 end) return 'survived'", ok("survived")),
    attack("sort_spinning_comparator", f"table.sort({{3, 2, 1}}, function() {SPIN} end)", limit("max_instructions")),
    attack("sort_huge_len", "table.sort(setmetatable({}, {__len = function() return 1e9 end}))",
           limit("max_instructions")),
    attack("sort_spinning_lt", f"local mt = {{__lt = function() {SPIN} end}} "
           "table.sort({setmetatable({}, mt), setmetatable({}, mt), setmetatable({}, mt)})",
           limit("max_instructions")),
    attack("sort_mixed_types", "table.sort({1, 'a', {}})", ERROR),
    # Escapes: the host bridge and the environment ---------------------------------------------
    attack("python_and_friends", "return {type(python), type(debug), type(package), type(io), "
           "type(_G), type(dofile), type(loadstring), type(string.dump), type(os.execute), type(os.getenv)}",
           ok(["nil"] * 10)),
    # require is the app's own modules (docs/api.md §13): never a library of the host.
    attack("require_a_library", "return {pcall(require, 'os')}",
           ok([False, "module 'os' not found (no script of this app has that name)"])),
    attack("environment_is_exactly_documented",
           "local names = {} for k in pairs(_ENV) do names[#names + 1] = k end table.sort(names) return names",
           ok(GLOBALS)),
    attack("request_and_ctx_are_plain", "return {getmetatable(request) == nil, getmetatable(request.headers) == nil, "
           "getmetatable(ctx) == nil, request.__class__ == nil, request.headers.__class__ == nil, "
           "ctx.app.__class__ == nil, type(request.body), type(kv.get)}",
           ok([True, True, True, True, True, True, "string", "function"])),
    attack("host_function_has_no_attributes", "return kv.get.__globals__", ERROR),
    attack("host_error_is_a_plain_string", "local ok, e = pcall(kv.get, {}) "
           "return {ok, type(e), getmetatable(e) == getmetatable(''), e:find('[Pp]ython') == nil}",
           ok([False, "string", True, True])),
    attack("load_binary_literal", "local f, e = load('\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10') "
           "return {f == nil, e:find('binary') ~= nil}", ok([True, True])),
    attack("load_binary_mode_is_refused", "return tostring(load('\\27Lua', nil, 'b'))", ok("nil")),
    attack("load_reader_binary_first_piece", "local pieces = {'\\27', 'Lua', '\\84\\0'} local i = 0 "
           "local f = load(function() i = i + 1 return pieces[i] end) return tostring(f)", ok("nil")),
    attack("load_reader_returns_a_table", "local f, e = load(function() return {} end) "
           "return {f == nil, type(e)}", ok([True, "string"])),
    attack("load_reader_spins", f"return load(function() {SPIN} end)", limit("max_instructions")),
    attack("load_reader_endless_identifier", "local s = ('x'):rep(60000) return load(function() return s end)",
           limit("max_memory_bytes")),
    attack("load_reader_raises", "local f, e = load(function() error('reader') end) return {f == nil, type(e)}",
           ok([True, "string"])),
    attack("load_own_env_has_nothing", "return tostring(load('return string', 'x', 't', {})())", ok("nil")),
    attack("load_nil_env", "local f = load('x = 1', 'c', 't', nil) return (pcall(f))", ok(False)),
    attack("load_deeply_nested_source", "local n = 10000 "
           "return load('return ' .. ('('):rep(n) .. '1' .. (')'):rep(n)) == nil", ok(True)),
    attack("load_in_a_loop", "for i = 1, 1e6 do load(('x = 1 '):rep(1000)) end", limit("max_instructions")),
    attack("env_replaced", "local real = _ENV local _ENV = setmetatable({}, {__index = real}) "
           "return {real.getmetatable(real) == nil, real.python == nil, real.rawget(real, 'python') == nil}",
           ok([True, True, True])),
    attack("rawset_string_library", "rawset(string, 'rep', function() return 'mine' end) "
           "rawset(string, 'format', nil) rawset(table, 'concat', nil) return {('x'):rep(3), 1.5}",
           ok(["mine", 1.5])),
    attack("string_metatable_index_spins", f"getmetatable('').__index = function() {SPIN} end "
           "return ('x'):upper()", limit("max_instructions")),
    attack("string_metatable_swapped_out", "local mt = getmetatable('') mt.__index = nil "
           "return {status = 201, headers = {['X-A'] = 'b'}, body = {n = 1.25}}", ok({"n": 1.25}, 201)),
    attack("json_null_is_sealed", "local ok = pcall(function() json.null.x = 1 end) "
           "return {ok, getmetatable(json.null)}", ok([False, "json.null"])),
    # Protected calls and coroutines that try to swallow a limit -----------------------------
    attack("pcall_swallow_loop", f"for i = 1, 1e9 do pcall(function() {SPIN} end) end return 'escaped'",
           limit("max_instructions")),
    attack("xpcall_spinning_handler", f"xpcall(error, function() {SPIN} end) return 'escaped'",
           limit("max_instructions")),
    attack("xpcall_handler_swallows", f"xpcall(function() {SPIN} end, function() return 'caught' end) "
           "return 'escaped'", limit("max_instructions")),
    attack("wrap_spins", f"coroutine.wrap(function() {SPIN} end)() return 'escaped'", limit("max_instructions")),
    attack("resume_swallows", f"local co = coroutine.create(function() {SPIN} end) "
           "coroutine.resume(co) coroutine.resume(co) return 'escaped'", limit("max_instructions")),
    attack("wrap_under_pcall_after_a_trip", "local f = coroutine.wrap(function() string.rep('x', 1e12) end) "
           "pcall(f) pcall(f) return 'escaped'", limit("max_string_bytes")),
    attack("nested_coroutines_spin", "local function nest(n) if n == 0 then while true do end end "
           "return coroutine.wrap(function() return pcall(nest, n - 1) end)() end nest(20) return 'escaped'",
           limit("max_instructions")),
    attack("close_spinning_close_handler", "local co = coroutine.create(function() "
           f"local x <close> = setmetatable({{}}, {{__close = function() {SPIN} end}}) coroutine.yield() end) "
           "coroutine.resume(co) pcall(coroutine.close, co) return 'escaped'", limit("max_instructions")),
    attack("close_erroring_close_handler", "local co = coroutine.create(function() "
           "local x <close> = setmetatable({}, {__close = function() error('boom') end}) coroutine.yield() end) "
           "coroutine.resume(co) local ok, e = coroutine.close(co) return {ok, e:find('boom') ~= nil}",
           ok([False, True])),
    attack("close_the_running_coroutine", "coroutine.close(coroutine.running())", ERROR),
    attack("yield_from_main", "coroutine.yield()", ERROR),
    attack("many_live_coroutines", "local t = {} for i = 1, 1e6 do t[i] = coroutine.create(print) end",
           limit("max_memory_bytes")),
    attack("yield_inside_pcall", "return coroutine.wrap(function() pcall(coroutine.yield, 7) return 8 end)()", ok(7)),
    # To-be-closed variables --------------------------------------------------------------------
    attack("tbc_spinning_on_return", f"local x <close> = setmetatable({{}}, {{__close = function() {SPIN} end}}) "
           "return 'done'", limit("max_instructions")),
    attack("tbc_runs_after_a_limit", "local x <close> = setmetatable({}, {__close = function() return end}) "
           f"{SPIN}", limit("max_instructions")),
    attack("tbc_replaces_a_limit_error", "do local x <close> = setmetatable({}, "
           "{__close = function() error('replaced') end}) string.rep('x', 1e12) end return 'escaped'",
           limit("max_string_bytes")),
    attack("tbc_of_a_plain_table", "local x <close> = {}", ERROR),
    # __gc in every spelling -----------------------------------------------------------------
    attack("gc_in_the_constructor", f"setmetatable({{}}, {{__gc = function() {SPIN} end}})", ERROR,
           logged="__gc"),
    attack("gc_false", "setmetatable({}, {__gc = false})", ERROR, logged="__gc"),
    attack("gc_by_rawset", f"local mt = {{}} rawset(mt, '__gc', function() {SPIN} end) setmetatable({{}}, mt)",
           ERROR, logged="__gc"),
    attack("gc_inherited_through_index", "local t = setmetatable({}, setmetatable({}, "
           f"{{__index = {{__gc = function() {SPIN} end}}}})) t = nil return 'ok'", ok("ok")),
    attack("gc_added_after_setmetatable", f"local mt = {{}} local t = setmetatable({{}}, mt) "
           f"mt.__gc = function() {SPIN} end t = nil return 'ok'", ok("ok")),
    attack("gc_on_the_string_metatable", f"getmetatable('').__gc = function() {SPIN} end return 'ok'", ok("ok")),
    attack("gc_reusing_the_string_metatable",
           f"local mt = getmetatable('') mt.__gc = function() {SPIN} end setmetatable({{}}, mt)", ERROR),
    attack("gc_other_spellings", f"setmetatable({{}}, {{__GC = function() {SPIN} end, [' __gc'] = print}}) "
           "return 'ok'", ok("ok")),
    # Metamethods reached from guarded library functions ---------------------------------------
    attack("insert_spinning_index", "table.insert(setmetatable({}, {__len = function() return 10 end, "
           f"__index = function() {SPIN} end}}), 1, 'x')", limit("max_instructions")),
    attack("insert_huge_len", "table.insert(setmetatable({}, {__len = function() return 2^40 end}), 1, 'x')",
           limit("max_instructions")),
    attack("insert_len_overflows", "table.insert(setmetatable({}, {__len = function() return math.maxinteger end}), "
           "1, 'x')", ERROR),
    attack("remove_huge_len", "table.remove(setmetatable({}, {__len = function() return 2^40 end}), 1)",
           limit("max_instructions")),
    attack("move_whole_range", "table.move({}, 1, math.maxinteger, 2)", limit("max_instructions")),
    attack("move_spinning_index", f"table.move(setmetatable({{}}, {{__index = function() {SPIN} end}}), 1, 3, 1, {{}})",
           limit("max_instructions")),
    attack("move_into_c_newindex", "table.move({1, 2, 3}, 1, 1e7, 1, setmetatable({}, {__newindex = rawset}))",
           limit("max_instructions")),
    attack("concat_metamethod_spins", f"return 'x' .. setmetatable({{}}, {{__concat = function() {SPIN} end}})",
           limit("max_instructions")),
    attack("eq_metamethod_spins", f"local mt = {{__eq = function() {SPIN} end}} "
           "return setmetatable({}, mt) == setmetatable({}, mt)", limit("max_instructions")),
    attack("len_metamethod_spins", f"return #setmetatable({{}}, {{__len = function() {SPIN} end}})",
           limit("max_instructions")),
    attack("pairs_metamethod_spins", f"for _ in pairs(setmetatable({{}}, {{__pairs = function() {SPIN} end}})) do end",
           limit("max_instructions")),
    attack("ipairs_spinning_index", f"for _ in ipairs(setmetatable({{}}, {{__index = function() {SPIN} end}})) do end",
           limit("max_instructions")),
    attack("request_given_a_spinning_index", f"setmetatable(request, {{__index = function() {SPIN} end}}) "
           "return request.nothing", limit("max_instructions")),
    attack("response_metamethods_never_run", f"local spin = function() {SPIN} end "
           "return setmetatable({status = 200, body = setmetatable({1, 2}, {__len = spin, __index = spin, "
           "__pairs = spin, __tostring = spin})}, {__index = spin, __pairs = spin})", ok([1, 2])),
    # Deep recursion ---------------------------------------------------------------------------
    attack("recursion", "local function f(n) return 1 + f(n + 1) end return f(1)", limit("max_call_depth")),
    attack("tail_recursion", "local function f(n) return f(n + 1) end return f(1)", limit("max_instructions")),
    attack("recursion_after_a_long_loop", "for i = 1, 1e6 do end local function f(n) return 1 + f(n + 1) end "
           "return f(1)", limit("max_call_depth")),
    attack("recursion_through_pcall", "local function f() return pcall(f) end return tostring(f())",
           limit("max_call_depth")),
    attack("recursion_through_index", "local t = setmetatable({}, {}) "
           "getmetatable(t).__index = function(t, k) return t[k] end return t.x", ERROR, logged="C stack overflow"),
    attack("recursion_through_gsub", "local function f(s) return (s:gsub('.', f)) end return f('ab')",
           limit("max_call_depth")),
    attack("recursion_through_coroutines", "local function f() return coroutine.wrap(f)() end return f()", ERROR),
    attack("recursion_rethrowing", "local function f(n) if n == 0 then error({}) end "
           "local ok, e = pcall(f, n - 1) error(e) end f(1000)", limit("max_call_depth")),
    # Error objects ----------------------------------------------------------------------------
    attack("error_with_spinning_tostring", f"error(setmetatable({{}}, {{__tostring = function() {SPIN} end}}))",
           limit("max_instructions")),
    attack("error_with_erroring_tostring", "error(setmetatable({}, {__tostring = function() error('inner') end}))",
           ERROR, logged="(error object is a table value)"),
    attack("error_table", "error({code = 1})", ERROR, logged="(error object is a table value)"),
    attack("error_function", "error(print)", ERROR, logged="(error object is a function value)"),
    attack("error_coroutine", "error((coroutine.running()))", ERROR, logged="(error object is a thread value)"),
    attack("error_long_message", "error(('x'):rep(60000))", ERROR, logged="xxxx"),
    attack("error_says_out_of_memory", "error('not enough memory')", ERROR, logged="raised by the script"),
    attack("error_says_limit", "error('execution stopped: sandbox limit exceeded', 0)", ERROR),
    attack("pcall_sees_renamed_memory_error", "local _, e = pcall(error, 'not enough memory') return e",
           ok("not enough memory (raised by the script)")),
    attack("error_level_maxinteger", "error('x', math.maxinteger)", ERROR),
    attack("error_level_not_an_integer", "error('x', math.huge)", ERROR),
    # Response shapes -----------------------------------------------------------------------------
    attack("status_float", "return {status = 200.5}", BAD),
    attack("status_string", "return {status = '200'}", BAD),
    attack("status_nan", "return {status = 0/0}", BAD),
    attack("status_beyond_integers", "return {status = 2^63}", BAD),
    attack("status_boolean", "return {status = true}", BAD),
    attack("status_599", "return {status = 599, body = 'odd'}", ok("odd", 599)),
    attack("status_200", "return {status = 200, body = 'lowest'}", ok("lowest", 200)),
    # An interim status as the final answer would leave the client waiting for another.
    attack("status_100_continue", "return {status = 100, body = 'x'}", BAD),
    attack("status_101_switching", "return {status = 101, headers = {Upgrade = 'websocket'}}", BAD),
    attack("status_199", "return {status = 199}", BAD),
    attack("header_value_lf", "return {status = 200, headers = {['X-A'] = 'a\\nSet-Cookie: x=1'}}", BAD),
    attack("header_value_cr", "return {status = 200, headers = {['X-A'] = 'a\\rb'}}", BAD),
    attack("header_value_nul", "return {status = 200, headers = {['X-A'] = 'a\\0b'}}", BAD),
    attack("header_value_obs_fold", "return {status = 200, headers = {['X-A'] = 'a\\r\\n b'}}", BAD),
    attack("header_name_crlf", "return {status = 200, headers = {['X\\r\\nInjected'] = 'yes'}}", BAD),
    attack("header_name_colon", "return {status = 200, headers = {['X-A:B'] = 'c'}}", BAD),
    attack("header_name_empty", "return {status = 200, headers = {[''] = 'c'}}", BAD),
    attack("header_name_number", "return {status = 200, headers = {[1] = 'c'}}", BAD),
    attack("header_list_of_tables", "return {status = 200, headers = {['X-A'] = {{}}}}", BAD),
    attack("header_list_with_crlf", "return {status = 200, headers = {['Set-Cookie'] = {'a=1', 'b=2\\r\\nX: y'}}}",
           BAD),
    attack("header_value_over_max_string", "return {status = 200, headers = {['X-A'] = ('x'):rep(70000)}}",
           limit("max_string_bytes")),
    attack("headers_over_max_entries", "local h = {} for i = 1, 20000 do h['X-' .. i] = 'v' end "
           "return {status = 200, headers = h}", limit("max_table_entries"), max_table_entries=10_000),
    attack("headers_that_are_not_a_table", "return {status = 200, headers = 'X-A: b'}", BAD),
    attack("body_function", "return {status = 200, body = print}", BAD),
    attack("body_cycle", "local t = {} t[1] = t return {status = 200, body = t}", BAD),
    attack("body_nan", "return {status = 200, body = {x = 0/0}}", BAD),
    attack("body_infinity", "return {x = math.huge}", BAD),
    attack("body_nested_300_deep", "local t = {} for i = 1, 300 do t = {t} end return t", BAD),
    attack("body_nested_100000_deep", "local t = {} for i = 1, 100000 do t = {t} end return t", BAD,
           max_memory_bytes=32 * 1024 * 1024),
    attack("body_boolean_key", "return {[true] = 1}", BAD),
    attack("body_float_key", "return {[1.5] = 1}", BAD),
    attack("body_invalid_utf8", "return {s = '\\xff'}", BAD),
    attack("body_over_max_entries", "local t = {} for i = 1, 20000 do t[i] = i end return t",
           limit("max_table_entries")),
    attack("text_body_over_max_output", "return ('x'):rep(60000)", limit("max_output_bytes"),
           max_output_bytes=32 * 1024),
    attack("json_body_over_max_output", "local t = {} for i = 1, 5000 do t[i] = ('x'):rep(10) end return t",
           limit("max_output_bytes"), max_output_bytes=32 * 1024),
    attack("return_a_function", "return print", BAD),
    attack("return_a_coroutine", "return coroutine.create(print)", BAD),
    attack("return_json_null", "return json.null", ok(None)),
    attack("return_mininteger", "return math.mininteger", ok(-(2**63))),
    # Log flooding ---------------------------------------------------------------------------------
    attack("log_many_entries", "for i = 1, 1e6 do log.info('x') end", limit("max_table_entries"),
           max_table_entries=1000),
    attack("log_long_entries", "for i = 1, 100 do log.info(('x'):rep(10000)) end", limit("max_output_bytes")),
    attack("log_one_huge_entry", "local s = ('x'):rep(60000) print(s, s)", limit("max_string_bytes")),
    attack("log_many_arguments", "local t = {} for i = 1, 40000 do t[i] = 'xy' end print(table.unpack(t))",
           limit("max_string_bytes")),
    attack("log_flood_under_pcall", "while true do pcall(log.info, 'x') end", limit("max_table_entries"),
           max_table_entries=1000),
    attack("log_spinning_tostring", f"log.warn(setmetatable({{}}, {{__tostring = function() {SPIN} end}}))",
           limit("max_instructions")),
    attack("log_erroring_tostring", "log.error(setmetatable({}, {__tostring = function() error('x') end}))", ERROR),
]


@pytest.fixture(scope="module")
def live(server_env, database, tmp_path_factory):
    """This module's own server, so that an attack's damage could not hide in another suite's."""
    server = LiveServer(server_env, tmp_path_factory.mktemp("attacks") / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(live):
    return login(live.url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def target(api, live):
    """The attacker's app."""
    return new_site(api, live.url, "attacker")


@pytest.fixture(scope="module")
def bystander(api, live):
    """Another app on the same server, with data and a route that must keep answering."""
    site = new_site(api, live.url, "bystander")
    site.route("/canary", 'return "alive"')
    site.route("/store", 'secret_global = "bystander-global" '
               'kv.set("secret", "bystander-kv") docs.insert("private", {_id = "d1", secret = "bystander-doc"}) '
               'return "stored"', method="POST")
    assert site.call("/store", method="POST", timeout=CLIENT_TIMEOUT).text == "stored"
    return site


def attack_route(site, item):
    """Give an attack its script and route; return the route's path."""
    knobs = {**SMALL, **item.knobs}
    script = site.script(item.source, name=f"attack.{item.name}", sandbox=knobs, timeout_seconds=item.timeout)
    path = f"/attack/{item.name}"
    site.route(path, script=script)
    return path


def assert_healthy(live, bystander):
    """The server and another app's route still answer at once."""
    started = time.monotonic()
    assert requests.get(live.url + "/healthz", timeout=QUICK_SECONDS).json()["status"] == "ok"
    canary = bystander.call("/canary", timeout=QUICK_SECONDS)
    assert (canary.status_code, canary.text) == (200, "alive")
    assert time.monotonic() - started < QUICK_SECONDS
    assert live.process.poll() is None


def logged_error(api, execution_id):
    """Return the execution log's error message of a run (waiting for the log writer)."""
    deadline = time.monotonic() + 10
    while True:
        response = api.get(f"/api/v1/admin/executions/{execution_id}", timeout=CLIENT_TIMEOUT)
        if response.status_code == 200:
            return response.json()
        assert time.monotonic() < deadline, response.text
        time.sleep(0.05)


@pytest.mark.parametrize("item", ATTACKS)
def test_attack(api, live, target, bystander, item):
    path = attack_route(target, item)
    expect = item.expect
    started = time.monotonic()
    response = target.call(path, timeout=CLIENT_TIMEOUT)
    elapsed = time.monotonic() - started

    assert HOST_WORDS.search(response.text) is None, response.text
    assert elapsed < item.timeout + 3
    assert response.status_code == expect.status, response.text
    if expect.code == "ok":
        if expect.status != 204:
            assert (response.json() if response.headers["Content-Type"] == "application/json" else response.text) == (
                expect.body
            )
        assert_healthy(live, bystander)
        return
    error = response.json()["error"]
    assert error["code"] == expect.code
    assert set(error) <= {"code", "message", "execution_id", "limit"}
    assert error.get("limit") == expect.limit
    logged = logged_error(api, error["execution_id"])
    assert logged["status"] == expect.code and logged["http_status"] == expect.status
    message = logged["error"]["message"]
    assert HOST_WORDS.search(message) is None, message
    assert len(message) <= 4096
    if item.logged:
        assert item.logged in message
    assert_healthy(live, bystander)


# Nothing survives a run, and nothing crosses apps ------------------------------------------------

# Repeated so that each executor process serves a poisoning run and a checking run.
REPEAT = 4


def test_poisoned_string_metatable_and_libraries_do_not_survive(target, live, bystander):
    target.route("/poison", """
        local mt = getmetatable("")
        mt.__index = function() return function() return "poisoned" end end
        mt.__concat = function() return "poisoned" end
        rawset(string, "upper", function() return "poisoned" end)
        string.format = nil
        table.concat = function() return "poisoned" end
        math.pi = 3
        return ("x"):upper()
    """)
    target.route("/check", """
        return {("x"):upper(), getmetatable("").__index == string, string.format("%d", 7),
                table.concat({"a", "b"}), math.pi > 3.14, getmetatable("").__concat == nil}
    """)
    for _ in range(REPEAT):
        assert target.call("/poison", timeout=CLIENT_TIMEOUT).text == "poisoned"
        assert target.call("/check", timeout=CLIENT_TIMEOUT).json() == ["X", True, "7", "ab", True, True]
    assert_healthy(live, bystander)


def test_globals_do_not_survive_between_runs(target):
    target.route("/set-globals", """
        leaked = "from an earlier run"
        _ENV.also = 1
        rawset(_ENV, "raw", 1)
        setmetatable(_ENV, {__index = function() return "from an earlier run" end})
        return "set"
    """)
    target.route("/read-globals", "return {leaked == nil, also == nil, raw == nil, getmetatable(_ENV) == nil}")
    for _ in range(REPEAT):
        assert target.call("/set-globals", timeout=CLIENT_TIMEOUT).text == "set"
        assert target.call("/read-globals", timeout=CLIENT_TIMEOUT).json() == [True, True, True, True]


def test_another_apps_globals_and_data_stay_out_of_reach(target, bystander):
    target.route("/snoop", """
        local found = {}
        for _ = 1, 2 do
          found[#found + 1] = secret_global or "none"
        end
        found[#found + 1] = kv.get("secret") or "none"
        local listed = kv.list({prefix = "sec"})
        found[#found + 1] = #listed.keys
        found[#found + 1] = docs.get("private", "d1") or "none"
        found[#found + 1] = docs.count("private")
        found[#found + 1] = ctx.app.slug
        return found
    """)
    for _ in range(REPEAT):
        response = target.call("/snoop", timeout=CLIENT_TIMEOUT)
        assert response.json() == ["none", "none", "none", 0, "none", 0, target.slug]
        assert "bystander" not in response.text


def test_a_tripped_executor_serves_the_next_run_cleanly(target, live, bystander):
    target.route("/trip", script=target.script("string.rep('x', 1e12)", sandbox=SMALL))
    target.route("/after", "return {collectgarbage('count') < 4096, ('ab'):rep(2)}")
    for _ in range(REPEAT):
        assert target.call("/trip", timeout=CLIENT_TIMEOUT).json()["error"]["limit"] == "max_string_bytes"
        assert target.call("/after", timeout=CLIENT_TIMEOUT).json() == [True, "abab"]
    assert_healthy(live, bystander)


def test_nothing_leaks_through_the_execution_log(api, target):
    target.route("/noisy", """
        log.info("a\\0b\\27[31m", nil, true, {}, print)
        local ok, e = pcall(kv.set)
        log.warn(e)
        error({})
    """)
    # The log keeps the request as sent; a client of our own naming keeps it free of host words.
    error = target.call("/noisy", timeout=CLIENT_TIMEOUT, headers={"User-Agent": "corpus-client"}).json()["error"]
    logged = logged_error(api, error["execution_id"])
    text = json.dumps(logged)
    assert HOST_WORDS.search(text) is None, text
    first = logged["logs"][0]["message"]
    assert first.startswith("a\ufffdb\ufffd[31m nil true table: ") and "function: " in first
    assert logged["error"]["message"] == "(error object is a table value)"


# Hostile requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expect",
    [
        pytest.param("[" * 254 + "]" * 254, "table", id="json_254_deep"),
        pytest.param("[" * 255 + "]" * 255, "nil", id="json_255_deep"),
        pytest.param('{"a":' * 900 + "1" + "}" * 900, "nil", id="json_900_deep"),
        pytest.param("[" * 5000 + "]" * 5000, "nil", id="json_5000_deep"),
        pytest.param("[" * 60_000, "nil", id="json_60000_open"),
        pytest.param("[" * 70_000, 507, id="body_over_max_string"),
        pytest.param(json.dumps(list(range(20000))), 507, id="json_over_max_entries"),
        pytest.param(json.dumps("x" * 70000), 507, id="json_over_max_string"),
        pytest.param("1e999999", "nil", id="json_huge_number"),
        pytest.param("[NaN, Infinity]", "nil", id="json_nan"),
        pytest.param("1" + "0" * 400, "nil", id="json_integer_beyond_a_double"),
        pytest.param("1" + "0" * 30, "number", id="json_integer_beyond_64_bits"),
    ],
)
def test_hostile_request_bodies(target, live, bystander, body, expect):
    path = f"/body/{uuid.uuid4().hex}"
    target.route(path, method="POST", script=target.script("return type(request.json)", sandbox=SMALL))
    response = target.call(path, method="POST", data=body, timeout=CLIENT_TIMEOUT,
                           headers={"Content-Type": "application/json"})
    if expect == 507:
        assert response.status_code == 507, response.text
        assert response.json()["error"]["code"] == "limit_exceeded"
    else:
        assert (response.status_code, response.text) == (200, expect)
    assert_healthy(live, bystander)


def test_the_corpus_is_broad():
    assert len(ATTACKS) >= 80
    assert len({param.values[0].name for param in ATTACKS}) == len(ATTACKS)

