"""Audit what a warm runtime shares between runs (docs/sandbox.md "Runtime lifecycle").

A warm runtime serves many runs of one app. These tests walk its object graph with
Lua's debug library (kept for the test from before the runtime boots) and report:

- every table a script can reach (its environment, keys, values, metatables as
  getmetatable shows them, the string metatable) that is the same object in two
  runs: only json.null (read-only) and the string metatable (restored around each
  run) may be;
- every table held in an upvalue of code a script can call: each must be one of
  the reviewed ones below, and none may be reachable by a script;
- every scalar upvalue of that code at the end of a run: after a series of hostile
  runs it must equal a fresh runtime's after the same run, so no value set by one
  run (a limit, a counter, a flag) is still there in the next.
"""
import pytest

from picloud.sandbox import BUILTIN_DEFAULTS
from picloud.sandbox import runtime as runtime_module
from picloud.sandbox.runtime import AppRuntime

# Tables held in upvalues of the shared code, each reviewed: why a script cannot
# change what it means for another run.
REVIEWED_UPVALUE_TABLES = {
    # Master tables of the environment, copied into each run's fresh tables; no
    # script holds them.
    "string_lib", "table_lib", "math_lib", "utf8_lib", "coroutine_lib", "libraries", "builtins", "log",
    # The same masters, as the generated constructor of run environments holds them.
    "master_string", "master_table", "master_math", "master_utf8", "master_coroutine", "master_os",
    "master_json", "master_log",
    # C functions the guarded library functions stand in for.
    "lib", "lib_utf8", "lib_os",
    # Hook intervals per coroutine: weak keys, emptied by finish().
    "intervals",
    # The string metatable and Lua's own metamethods, restored around each run.
    "string_metatable", "string_metamethods",
    # json.null (read-only to scripts) and the codec's constant tables.
    "null", "ESCAPES", "UNESCAPES", "LITERALS", "NULL_MARK",
    # Host module closures per host spec: built by the runtime, copied per run.
    "host_modules",
    # The chunks' environment between runs: a table no script can read or write.
    "sealed",
    # The entry points' table, held by the executor only.
    "api",
    # world.lua's constant set of http.request options, read only by its own code.
    "REQUEST_FIELDS",
}
# The environment of the run being audited: made for it, dropped by finish()
# (the first test checks that no table a script reaches outlives its run).
PER_RUN = {"env", "_ENV", "loaded", "loading"}  # loaded/loading: require's, made per run
# Upvalues that measure the heap or the clock rather than hold state.
MEASURES = {"baseline_kb", "peak_kb", "clock_base"}

AUDIT = b"""
local h = ...
local next, type, tostring, format, rawget = h.next, h.type, h.tostring, h.format, h.rawget
local getupvalue, getmetatable = h.debug.getupvalue, h.debug.getmetatable

local function reachable_by_script(env)
  local seen = {}
  local function visit(v, path)
    if type(v) ~= "table" or seen[v] then return end
    seen[v] = path
    for k, x in next, v do
      visit(k, path .. "[key]")
      visit(x, path .. "." .. tostring(k))
    end
    local mt = getmetatable(v)
    if mt ~= nil then
      local shown = rawget(mt, "__metatable")
      if shown ~= nil then visit(shown, path .. "<metatable>") else visit(mt, path .. "<metatable>") end
    end
  end
  visit(env, "_ENV")
  visit(getmetatable(""), "<string metatable>")
  return seen
end

-- Walk the upvalues of every function reachable from `roots`; return the tables
-- held in upvalues (name -> table) and the scalars (path -> text).
local function upvalues_of(roots)
  local seen, tables, scalars = {}, {}, {}
  local function visit(v, path)
    local t = type(v)
    if (t ~= "function" and t ~= "table") or seen[v] then return end
    seen[v] = true
    if t == "table" then
      for k, x in next, v do visit(k, path) visit(x, path .. "." .. tostring(k)) end
      return
    end
    local i = 1
    while true do
      local name, value = getupvalue(v, i)
      if name == nil then break end
      local vt = type(value)
      if vt == "table" then
        tables[name] = tables[name] or value
      elseif vt ~= "function" and vt ~= "thread" and vt ~= "userdata" then
        scalars[name] = scalars[name] or {}
        scalars[name][format("%s %s", vt, tostring(value))] = true
      end
      visit(value, name)
      i = i + 1
    end
  end
  for _, root in next, roots do visit(root, "root") end
  return tables, scalars
end

local audit = {}

-- Audit the run whose chunk is `chunk`, before finish() unbinds its environment.
function audit.run(chunk, roots)
  local _, env = getupvalue(chunk, 1)
  local reached = reachable_by_script(env)
  local tables, scalars = upvalues_of(roots)
  return reached, tables, scalars
end

-- Return the paths (in `later`) of tables both walks reached.
function audit.shared(earlier, later)
  local paths, n = {}, 0
  for t, path in next, later do
    if earlier[t] ~= nil then
      n = n + 1
      paths[n] = path
    end
  end
  return paths
end

-- Return the upvalue names whose tables a script reached.
function audit.exposed(tables, reached)
  local names, n = {}, 0
  for name, t in next, tables do
    if reached[t] ~= nil then
      n = n + 1
      names[n] = name
    end
  end
  return names
end

return audit
"""

PLANTS = [
    "leaked = 1 string.upper = nil getmetatable('').__index = function() return 'p' end return 'ok'",
    "setmetatable(_ENV, {__index = function() return 1 end}) math.randomseed(7) return 'ok'",
    "local t = {} for i = 1, 1e9 do t[i] = i end",
    "while true do end",
    "local function f() return f() + 1 end return f()",
    "local co = coroutine.wrap(function() local x <close> = setmetatable({}, {__close = print}) "
    "coroutine.yield() end) co() string.co = co error('planted')",
    "return json.decode('[' .. ('1,'):rep(50) .. '1]')",
    "log.info(('x'):rep(100)) return {status = 201, headers = {['X-A'] = 'b'}, body = {1, 2}}",
    "getmetatable('').__metatable = 'locked' rawset(string, 'x', 1) pcall(rawset, json.null, 'a', 1) return 'ok'",
    "kv.get = nil return kv",
]
# Small limits for the plants, other limits for the probe: none may carry over.
PLANT_LIMITS = {"max_instructions": 200_000, "max_memory_bytes": 4 * 1024 * 1024, "max_call_depth": 50,
                "max_table_entries": 40, "max_string_bytes": 5000, "max_output_bytes": 5000}
PROBE = "return {('x'):upper(), json.encode({1, json.null}), #json.decode('[1,2,3]'), kv.get('k')}"


@pytest.fixture
def debug_helpers(monkeypatch):
    """Keep, for each Lua runtime made, the debug library and a few functions boot hides."""
    helpers = {}
    real_new_runtime = runtime_module._new_runtime

    def new_runtime():
        lua = real_new_runtime()
        g = lua.globals()
        helpers[id(lua)] = lua.table_from({
            b"debug": g[b"debug"], b"next": g[b"next"], b"type": g[b"type"],
            b"tostring": g[b"tostring"], b"rawget": g[b"rawget"], b"format": g[b"string"][b"format"],
        })
        return lua

    # Boot code with its debug info, so that upvalues have their names.
    def bytecode(source):
        return real_new_runtime().execute(
            b"local source = ... return string.dump(assert(load(source, '=[sandbox]', 't')))", source
        )

    monkeypatch.setattr(runtime_module, "_new_runtime", new_runtime)
    monkeypatch.setattr(runtime_module, "_bytecode", bytecode)
    return helpers


class Audited:
    """An AppRuntime and the audit running inside it."""

    def __init__(self, helpers):
        self.runtime = AppRuntime()
        lua = self.runtime._lua
        self.audit = lua.execute(AUDIT, helpers[id(lua)])
        runtime = self.runtime
        self.roots = lua.table_from([
            runtime._compile, runtime._setup, runtime._run, runtime._report, runtime._usage,
            runtime._finish, runtime._null,
        ])

    def run(self, source, **limits):
        """Run a script and audit it; return (status, reached tables, upvalue tables, scalars)."""
        job = {"source": source, "chunk_name": "main", "limits": {**BUILTIN_DEFAULTS, **limits},
               "host_api": [["kv", ["get"]]]}
        result, _ = self.runtime.execute(job, {}, lambda *a: None, lambda *a: ("ok", b"null"))
        chunk = self.runtime._chunks[(source, b"main")]
        reached, tables, scalars = self.audit.run(chunk, self.roots)
        self.runtime.finish()
        return result["status"], reached, tables, scalars


def names(lua_table):
    return {key.decode() for key in lua_table.keys()}


def test_no_table_a_script_reaches_is_shared_between_runs(debug_helpers):
    audited = Audited(debug_helpers)
    _, first, _, _ = audited.run(PROBE)
    for plant in PLANTS:
        audited.run(plant, **PLANT_LIMITS)
    status, later, _, _ = audited.run(PROBE)
    assert status == "ok"
    shared = sorted(path.decode() for path in audited.audit.shared(first, later).values())
    assert shared == ["<string metatable>", "_ENV.json.null"]


def test_every_upvalue_table_is_reviewed_and_out_of_scripts_reach(debug_helpers):
    audited = Audited(debug_helpers)
    for plant in PLANTS:
        audited.run(plant, **PLANT_LIMITS)
    status, reached, tables, _ = audited.run(PROBE)
    assert status == "ok"
    assert " ".join(sorted(names(tables) - REVIEWED_UPVALUE_TABLES - PER_RUN)) == ""
    exposed = {name.decode() for name in audited.audit.exposed(tables, reached).values()}
    assert exposed - PER_RUN == {"string_metatable", "null"}


def test_no_scalar_state_survives_a_run(debug_helpers):
    fresh = Audited(debug_helpers)
    _, _, _, pristine = fresh.run(PROBE)
    used = Audited(debug_helpers)
    for plant in PLANTS:
        used.run(plant, **PLANT_LIMITS)
    _, _, _, after = used.run(PROBE)
    assert scalar_values(after) == scalar_values(pristine)


def scalar_values(scalars):
    """Return {upvalue name: the set of its values} from the audit, measures left out."""
    return {
        name.decode(): {value.decode() for value in values.keys()}
        for name, values in scalars.items()
        if name.decode() not in MEASURES
    }
