"""Nothing a run leaves behind reaches a later run, over HTTP against a real server.

Executors keep one warm Lua runtime per app (docs/sandbox.md "Runtime lifecycle").
Each case here is a "plant" script trying to leave state in that runtime — globals,
library tables, the string metatable, metatables, the random seed, finalizers and
to-be-closed variables that call host functions, suspended coroutines, budgets eaten
— and a "probe" script that must see a pristine environment. The plant runs alone
(warming the app's runtime where the pool will send the app's next lone run), then
as many at once as there are executors; the probe runs alone, then as many at once
as there are executors, each waiting for the others of its group to arrive (so the
group provably ran at the same time, one per executor), and so in another app too.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import new_site
from tests.support.live import LiveServer, login

EXECUTORS = 2
CLIENT_TIMEOUT = 15
# Lua text of a JSON array of 5,000 numbers, decoded without encoding it first.
BIG_ARRAY = "'[' .. ('1,'):rep(4999) .. '1]'"
# Room for the meeting loop on top of a script's own work.
ROOMY = {"max_instructions": 100_000_000}


def meeting(name):
    """Lua that holds a run until all the runs of its group have arrived.

    Runs that wait for each other ran at the same time, each on its own executor:
    the group's size is the number of executors.
    """
    key = f"meet:{name}"
    return (
        f"do local arrived = kv.incr('{key}') local full = ((arrived - 1) // {EXECUTORS} + 1) * {EXECUTORS} "
        "local deadline = os.time() + 10 "
        f"while (kv.get('{key}') or 0) < full do "
        "if os.time() > deadline then error('the other runs of the group never came') end end end\n"
    )


@dataclass(frozen=True)
class Case:
    name: str
    plant: str
    probe: str
    expect: object
    plant_status: int = 200
    plant_knobs: dict = field(default_factory=dict)
    probe_knobs: dict = field(default_factory=dict)
    probe_status: int = 200
    # Whether the probes sent together meet first; the meeting's polling spends
    # instructions, as much as a loaded machine makes it wait.
    meet: bool = True


def case(name, plant, probe, expect=True, **options):
    return pytest.param(Case(name, plant, probe, expect, **options), id=name)


CASES = [
    # The environment -------------------------------------------------------------------------
    case("global", "leaked = 'planted' return 'ok'", "return leaked == nil"),
    case("env_rawset", "rawset(_ENV, 'leaked', 1) return 'ok'", "return rawget(_ENV, 'leaked') == nil"),
    case("env_metatable", "setmetatable(_ENV, {__index = function() return 'planted' end}) return 'ok'",
         "return getmetatable(_ENV) == nil and undefined_name == nil"),
    case("builtins_replaced", "pcall = function() return 'planted' end type = nil tostring = nil "
         "select = nil next = function() end return 'ok'",
         "return pcall(error, 'x') == false and type(1) == 'number' and tostring(1) == '1' "
         "and select('#', 1, 2) == 2 and next({1}) == 1"),
    case("print_and_error", "print = nil error = function() return 'planted' end assert = nil return 'ok'",
         "return print ~= nil and assert(true) and not pcall(error, 'x')"),
    case("load_default_env", "local f = load('planted_by_load = 1') f() return 'ok'",
         "return planted_by_load == nil and load('return planted_by_load')() == nil"),
    # Library tables ---------------------------------------------------------------------------
    case("string_function_replaced", "string.upper = function() return 'planted' end "
         "rawset(string, 'lower', function() return 'planted' end) return 'ok'",
         "return ('x'):upper() == 'X' and string.upper('y') == 'Y' and string.lower('A') == 'a'"),
    case("string_field_added", "string.planted = 1 string.rep = nil return 'ok'",
         "return string.planted == nil and string.rep('ab', 2) == 'abab'"),
    case("string_library_metatable", "setmetatable(string, {__index = function() return 'planted' end}) "
         "return 'ok'", "return getmetatable(string) == nil and string.nothing == nil"),
    case("table_library", "table.insert = nil table.concat = function() return 'planted' end "
         "setmetatable(table, {__newindex = function() error('planted') end}) return 'ok'",
         "table.extra = 1 local t = {} table.insert(t, 'a') table.insert(t, 'b') "
         "return table.concat(t, ',') == 'a,b' and getmetatable(table) == nil"),
    case("math_library", "math.pi = 3 math.huge = 1 math.floor = nil math.maxinteger = 0 return 'ok'",
         "return math.pi > 3.14 and math.huge > 1e308 and math.floor(1.5) == 1 "
         "and math.maxinteger == 9223372036854775807"),
    case("os_library", "os.time = function() return 0 end os.date = nil os.clock = nil os.exit = 1 return 'ok'",
         "return os.time() > 1e9 and type(os.date('%Y')) == 'string' and os.clock() >= 0 and os.exit == nil"),
    case("utf8_and_coroutine_libraries", "utf8.char = nil coroutine.wrap = nil coroutine.yield = 1 return 'ok'",
         "return utf8.char(72) == 'H' and coroutine.wrap(function() coroutine.yield(1) end)() == 1"),
    case("json_library", "json.encode = function() return 'planted' end json.null = 1 json.decode = nil "
         "return 'ok'", "return json.encode({1}) == '[1]' and getmetatable(json.null) == 'json.null' "
         "and json.decode('[1]')[1] == 1"),
    case("json_null_written", "pcall(rawset, json.null, 'planted', 1) pcall(function() json.null.x = 1 end) "
         "return 'ok'", "return next(json.null) == nil and json.encode({json.null}) == '[null]'"),
    case("log_library", "log.info = nil log.warn = function() error('planted') end return 'ok'",
         "log.info('probe') log.warn('probe') return log.error ~= nil"),
    case("host_modules", "kv.get = function() return 'planted' end docs.get = nil "
         "setmetatable(kv, {__index = function() return 'planted' end}) return 'ok'",
         "return kv.get('planted-key') == nil and docs.get ~= nil and getmetatable(kv) == nil and kv.nope == nil"),
    case("request_and_ctx", "request.planted = 1 ctx.app.slug = 'planted' ctx.planted = 1 return 'ok'",
         "return request.planted == nil and ctx.app.slug ~= 'planted' and ctx.planted == nil"),
    # The string metatable -----------------------------------------------------------------------
    case("string_metatable_index", "getmetatable('').__index = function() return function() return 'planted' end end "
         "return 'ok'", "return ('x'):upper() == 'X' and getmetatable('').__index == string"),
    case("string_metatable_arithmetic", "local mt = getmetatable('') mt.__add = nil "
         "mt.__concat = function() return 'planted' end mt.__call = function() return 'planted' end return 'ok'",
         "return '10' + 1 == 11 and 'a' .. 'b' == 'ab' and not pcall(function() return ('x')() end)"),
    case("string_metatable_protected", "getmetatable('').__metatable = 'planted' return 'ok'",
         "return type(getmetatable('')) == 'table'"),
    case("string_metatable_emptied", "local mt = getmetatable('') for k in pairs(mt) do mt[k] = nil end "
         "return 'ok'", "return ('abc'):sub(2) == 'bc' and '3' * '4' == 12"),
    # Random numbers ------------------------------------------------------------------------------
    case("random_seed", "math.randomseed(42) return 'ok'",
         "math.randomseed(42) local fixed = math.random(1, 1 << 40) math.randomseed(42) "
         "local again = math.random(1, 1 << 40) return fixed == again"),
    # Finalizers, to-be-closed variables, coroutines ------------------------------------------------
    case("gc_metamethod_refused", "local ok = pcall(setmetatable, {}, {__gc = function() kv.set('gc', 'ran') end}) "
         "return ok", "return kv.get('gc') == nil", expect=True),
    case("gc_added_after_setmetatable", "local mt = {} planted = setmetatable({}, mt) "
         "mt.__gc = function() kv.set('gc_late', 'ran') end return 'ok'",
         "return kv.get('gc_late') == nil"),
    case("gc_through_index", "local mt = setmetatable({}, {__index = function(_, k) if k == '__gc' then "
         "return function() kv.set('gc_index', 'ran') end end end}) planted = setmetatable({}, mt) return 'ok'",
         "return kv.get('gc_index') == nil"),
    case("suspended_coroutine_with_close", "local co = coroutine.wrap(function() "
         "local x <close> = setmetatable({}, {__close = function() kv.set('closed', 'ran') end}) "
         "coroutine.yield() end) co() planted_co = co return 'ok'",
         "return kv.get('closed') == nil"),
    case("close_pending_at_a_limit", "local x <close> = setmetatable({}, {__close = function() "
         "kv.set('closed_at_limit', 'ran') end}) while true do end",
         "return kv.get('closed_at_limit') == nil", plant_status=507, plant_knobs={"max_instructions": 100_000}),
    case("suspended_coroutine_in_a_library", "string.co = coroutine.create(function() "
         "while true do leaked_by_co = 1 coroutine.yield() end end) coroutine.resume(string.co) return 'ok'",
         "return string.co == nil and leaked_by_co == nil"),
    case("coroutine_running_kept", "local co = coroutine.running() string.main = co return 'ok'",
         "local co, main = coroutine.running() return string.main == nil and main == true"),
    case("closure_kept_in_a_global", "local secret = 'planted' reader = function() return secret end return 'ok'",
         "return reader == nil"),
    # Budgets -------------------------------------------------------------------------------------
    case("memory_held", "held = {} for i = 1, 100 do held[i] = ('x'):rep(50000) .. i end return 'ok'",
         "local t = {} for i = 1, 100 do t[i] = ('y'):rep(50000) .. i end "
         "return #t == 100 and collectgarbage('count') > 4000",
         plant_knobs={"max_memory_bytes": 8 * 1024 * 1024}, probe_knobs={"max_memory_bytes": 8 * 1024 * 1024}),
    case("memory_limit_hit", "local t = {} for i = 1, 1e8 do t[i] = ('z'):rep(1000) .. i end",
         "return #string.rep('q', 3 * 1024 * 1024) == 3 * 1024 * 1024",
         plant_status=507, plant_knobs={"max_memory_bytes": 8 * 1024 * 1024},
         probe_knobs={"max_memory_bytes": 8 * 1024 * 1024, "max_string_bytes": 8 * 1024 * 1024}),
    case("heap_count_is_per_run", "held = {} for i = 1, 200000 do held[i] = i end return 'ok'",
         "return collectgarbage('count') < 1024"),
    # The probe needs 2.2M of its 3M instructions: 1M still counted from the plant
    # would stop it. Its probes sent together do not meet (see Case.meet).
    case("instructions_eaten", "while true do end",
         "local n = 0 for i = 1, 1100000 do n = n + 1 end return n == 1100000",
         plant_status=507, plant_knobs={"max_instructions": 1_000_000},
         probe_knobs={"max_instructions": 3_000_000}, meet=False),
    case("call_depth_hit", "local function f() return 1 + f() end return f()",
         "local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end return f(80) == 80",
         plant_status=507, plant_knobs={"max_call_depth": 100}, probe_knobs={"max_call_depth": 100}),
    case("output_used", "for i = 1, 50 do log.info(('x'):rep(1000)) end return ('y'):rep(10000)",
         "return #('y'):rep(60000) == 60000", plant_knobs={"max_output_bytes": 64 * 1024},
         probe_knobs={"max_output_bytes": 64 * 1024, "max_string_bytes": 64 * 1024}),
    # Limits of one run never apply to the next (limits captured at load time) ---------------------
    case("table_entries_limit_not_kept_low", "return json.decode('[1,2,3]')[3]",
         f"return #json.decode({BIG_ARRAY}) == 5000",
         plant_knobs={"max_table_entries": 10}, probe_knobs={"max_table_entries": 100_000}),
    case("table_entries_limit_not_kept_high", f"return #json.decode({BIG_ARRAY})",
         f"return #json.decode({BIG_ARRAY})", expect=None, probe_status=507,
         plant_knobs={"max_table_entries": 100_000}, probe_knobs={"max_table_entries": 1000}),
    case("string_limit_not_kept_high", "return #('x'):rep(500000)", "return #('x'):rep(500000)",
         expect=None, probe_status=507, plant_knobs={"max_string_bytes": 1_000_000},
         probe_knobs={"max_string_bytes": 1000}),
]


@pytest.fixture(scope="module")
def live(server_env, database, tmp_path_factory):
    """This module's own server with a known number of executors."""
    # Probes of one app wait for each other to prove they run at once on different
    # executors: fair share must not hold the app to half the slots meanwhile.
    env = {**server_env, "PICLOUD_EXECUTOR_PROCESSES": str(EXECUTORS), "PICLOUD_APP_MAX_SHARE": "1"}
    server = LiveServer(env, tmp_path_factory.mktemp("plant-probe") / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(live):
    return login(live.url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def target(api, live):
    return new_site(api, live.url, "planter")


@pytest.fixture(scope="module")
def other(api, live):
    return new_site(api, live.url, "prober")


def add_route(site, path, source, knobs):
    script = site.script(source, sandbox={**ROOMY, **knobs}, timeout_seconds=5)
    site.route(path, script=script)


def call_together(site, path):
    """Request ``path`` once per executor, all at once; return the responses."""
    with ThreadPoolExecutor(EXECUTORS) as threads:
        return list(threads.map(lambda _: site.call(path, timeout=CLIENT_TIMEOUT), range(EXECUTORS)))


def assert_probe(response, item):
    assert response.status_code == item.probe_status, response.text
    if item.probe_status == 200:
        assert response.json() == item.expect, response.text


@pytest.mark.parametrize("item", CASES)
def test_plant_then_probe(target, other, item):
    plant, probe, together = f"/plant/{item.name}", f"/probe/{item.name}", f"/together/{item.name}"
    add_route(target, plant, item.plant, item.plant_knobs)
    add_route(target, probe, item.probe, item.probe_knobs)
    together_source = (meeting(item.name) if item.meet else "") + item.probe
    add_route(target, together, together_source, item.probe_knobs)
    add_route(other, together, together_source, item.probe_knobs)
    planted = [target.call(plant, timeout=CLIENT_TIMEOUT), *call_together(target, plant)]
    for response in planted:
        assert response.status_code == item.plant_status, response.text
    assert_probe(target.call(probe, timeout=CLIENT_TIMEOUT), item)
    for response in call_together(target, together):
        assert_probe(response, item)
    for response in call_together(other, together):
        assert_probe(response, item)


def test_the_corpus_is_broad():
    assert len(CASES) >= 30
    assert len({param.values[0].name for param in CASES}) == len(CASES)
