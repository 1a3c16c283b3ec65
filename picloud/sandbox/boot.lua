--[[
Boot code of one warm sandbox runtime (docs/sandbox.md "Runtime lifecycle"; the
attacks it answers are listed there too).

Runs once in a fresh LuaRuntime before any script code, while the real standard
library is still in reach. It captures what it needs in locals, builds the master
library tables (never handed to a script), then empties the real globals and the
loaded-module table so that nothing reachable later leads back to them. The
runtime then serves many runs of one app; each run gets a fresh environment built
from the masters, a fresh coroutine, fresh per-run state (reset in one place:
begin_run) and is cleaned up in one place (api.finish). It returns the entry points
the executor calls from Python: compile() once per script version, then per run
setup(), run(), report()/usage(), finish().

Rules for this file: no method calls on strings, and no `#`, `==`, indexing or
`pairs` on the script's tables (their metamethods would run script code here);
use the raw_* locals and the captured library functions only. This chunk runs
without debug info (runtime.py strips it): an error a script can see must not
depend on its local names or lines here (see "Guarded library functions").

Arguments: log_sink(level, message), host_call(module, fn, args_json) and
helper_call(name, ...), Python callables that never raise and never become
reachable from script code, and the bytecode of json.lua (see load_codec) and of
world.lua (see install_world).
]]
local log_sink, host_call, json_chunk, world_chunk, helper_call = ...

-- Everything the sandbox needs, captured before the real tables are emptied.
local debug_sethook, debug_getinfo, debug_getmetatable = debug.sethook, debug.getinfo, debug.getmetatable
local debug_upvaluejoin = debug.upvaluejoin
local raw_pcall, raw_xpcall, raw_error, raw_type, raw_select = pcall, xpcall, error, type, select
local raw_next, raw_rawget, raw_rawset, raw_rawequal, raw_rawlen = next, rawget, rawset, rawequal, rawlen
local raw_setmetatable, raw_tostring, raw_tonumber = setmetatable, tostring, tonumber
local raw_load, raw_collectgarbage = load, collectgarbage
local s_format, s_find, s_match, s_gsub, s_gmatch = string.format, string.find, string.match, string.gsub, string.gmatch
local s_sub, s_byte, s_lower = string.sub, string.byte, string.lower
local t_concat = table.concat
local co_create, co_resume, co_running, co_status, co_close =
    coroutine.create, coroutine.resume, coroutine.running, coroutine.status, coroutine.close
local co_yield, co_isyieldable = coroutine.yield, coroutine.isyieldable
local m_randomseed = math.randomseed
-- Shared by every string of the runtime: restored before and after each run to
-- what Lua made (__index and the arithmetic metamethods of string coercion).
local string_metatable = debug.getmetatable("")
local string_metamethods = {}
for key, value in next, string_metatable do string_metamethods[key] = value end
local m_type, m_tointeger, m_huge, m_floor = math.type, math.tointeger, math.huge, math.floor
local utf8_len, utf8_char = utf8.len, utf8.char
local string_lib, table_lib, math_lib, utf8_lib, coroutine_lib = string, table, math, utf8, coroutine
-- The C functions the guarded ones below stand in for, kept where no script reaches.
local lib = {
  rep = string.rep, format = string.format, gsub = string.gsub, char = string.char, pack = string.pack,
  concat = table.concat, insert = table.insert, remove = table.remove, move = table.move,
  sort = table.sort, unpack = table.unpack, setmetatable = setmetatable,
}
-- Named tables of their own, so that their argument errors name 'char' and 'date' too.
local lib_utf8, lib_os = {char = utf8.char}, {date = os.date}
local os_time, os_clock = os.time, os.clock
local raw_pairs, raw_ipairs, raw_getmetatable = pairs, ipairs, getmetatable
local loaded, real_globals = package.loaded, _G
-- From here on, reading a global is an error: boot code uses only the locals above.
local _ENV = nil

local MEMERR = "not enough memory"
-- A script may raise the allocator's message itself; it is renamed so that the
-- real one can be recognised (the classification itself is host-side state).
local MEMERR_BY_SCRIPT = "not enough memory (raised by the script)"
-- What an interrupted protected call sees; the outcome never depends on this text.
local LIMIT_ERROR = "execution stopped: sandbox limit exceeded"
-- The count hook starts fine-grained (usage of small scripts stays meaningful) and
-- doubles up to MAX_INTERVAL: the hook's own cost then stays a few percent.
local FIRST_INTERVAL, MAX_INTERVAL = 100, 100000
local MAX_ERROR_BYTES = 4096
-- Host call arguments cross to the web process in one frame (protocol.py's
-- MAX_PAYLOAD_FROM_EXECUTOR). Each string in them is bounded by max_string_bytes;
-- their whole size is not a string the script built, but a value or document the
-- host measures against PICLOUD_MAX_VALUE_BYTES with an error the script can catch.
local MAX_HOST_ARGS_BYTES = 64 * 1024 * 1024 - 1024

-- Per-run state: every variable below is set by begin_run() at the start of each
-- run, and those holding the run's objects are cleared by api.finish(). Shared
-- code reads limits only through these upvalues, never from a copy taken earlier.
local max_instructions, max_call_depth, max_string, max_entries, max_output = 0, 0, 0, 0, 0
local main_probe, coroutine_probe = 0, 0
local used = 0
local tripped, tripped_line, internal_message = nil, nil, nil
local baseline_kb, peak_kb = 0, 0
local output_used, log_entries = 0, 0
local clock_base = 0
-- The run's environment, its compiled chunk and the coroutine running it.
local env, chunk_source, script_main, script_thread
-- Hook intervals of live coroutines; weak, so a run's coroutines die with it.
local intervals = raw_setmetatable({}, {__mode = "k"})

-- ---------------------------------------------------------------------------
-- Limits: the count hook, charging, tripping

-- Return the line of the innermost frame of the script's own chunk, if any: in
-- the running thread, or in the suspended or dead thread `co`.
local function script_line(co)
  local level = co and 0 or 2
  while true do
    local info
    if co then info = debug_getinfo(co, level, "Sl") else info = debug_getinfo(level, "Sl") end
    if not info then return nil end
    if info.source == chunk_source and info.currentline > 0 then return info.currentline end
    level = level + 1
  end
end

-- End the execution: record why (host-side state) and unwind with an error that
-- every protected call in the sandbox re-raises.
local function trip(reason, message)
  if not tripped then
    tripped = reason
    internal_message = message
    tripped_line = script_line()
  end
  raw_error(LIMIT_ERROR, 0)
end

local function charge(cost)
  if cost > max_instructions - used then
    used = max_instructions + 1
    trip("max_instructions")
  end
  used = used + m_floor(cost)
end

local function count_hook()
  if tripped then raw_error(LIMIT_ERROR, 0) end
  local co, is_main = co_running()
  local n = intervals[co] or FIRST_INTERVAL
  used = used + n
  if used > max_instructions then trip("max_instructions") end
  if debug_getinfo(is_main and main_probe or coroutine_probe, "l") then trip("max_call_depth") end
  local kb = raw_collectgarbage("count")
  if kb > peak_kb then peak_kb = kb end
  local next_n = n * 2
  if next_n > MAX_INTERVAL then next_n = MAX_INTERVAL end
  -- Fire exactly when the budget would be exceeded, so the limit is precise.
  local left = max_instructions - used
  if next_n > left then next_n = left + 1 end
  if next_n ~= n then
    intervals[co] = next_n
    debug_sethook(count_hook, "", next_n)
  end
end

-- An error Lua raises in this chunk's own code carries its position, which
-- reads "?:-1:" as the chunk runs without debug info: drop it wherever a script
-- can see an error.
local function clean(e)
  if raw_type(e) == "string" and s_byte(e, 1) == 63 then
    local rest = s_match(e, "^%?:%-1: (.*)$")
    if rest then return rest end
  end
  return e
end

-- Re-raise what a protected call caught when the execution has to end anyway.
local function intercept(ok, ...)
  if ok then return true, ... end
  if tripped then raw_error(LIMIT_ERROR, 0) end
  local e = ...
  if e == MEMERR then trip("max_memory_bytes") end
  return false, clean(e)
end

local function check_string(s)
  if #s > max_string then trip("max_string_bytes") end
  return s
end

-- A table whose reads and writes run no metamethod.
local function plain(t)
  return raw_type(t) == "table" and debug_getmetatable(t) == nil
end

-- ---------------------------------------------------------------------------
-- Protected calls and coroutines

local function sandbox_pcall(...)
  if raw_select("#", ...) == 0 then raw_error("bad argument #1 to 'pcall' (value expected)", 2) end
  return intercept(raw_pcall(...))
end

local function handled(handler, ok, ...)
  if ok then return true, ... end
  local _, e = intercept(false, ...)
  -- The handler runs after unwinding (a real xpcall handler runs inside the
  -- failed call with hooks disabled, out of the instruction budget's reach).
  local _, result = intercept(raw_pcall(handler, e))
  return false, result
end

local function sandbox_xpcall(f, handler, ...)
  if raw_type(handler) ~= "function" then
    raw_error("bad argument #2 to 'xpcall' (function expected)", 2)
  end
  return handled(handler, raw_pcall(f, ...))
end

local function new_coroutine(f)
  local co = co_create(f)
  -- A coroutine inherits no Lua hook: give each one the count hook.
  intervals[co] = FIRST_INTERVAL
  debug_sethook(co, count_hook, "", FIRST_INTERVAL)
  return co
end

local function sandbox_create(f)
  if raw_type(f) ~= "function" then raw_error("bad argument #1 to 'create' (function expected)", 2) end
  return new_coroutine(f)
end

local function sandbox_resume(co, ...)
  if raw_type(co) ~= "thread" then raw_error("bad argument #1 to 'resume' (coroutine expected)", 2) end
  if tripped then raw_error(LIMIT_ERROR, 0) end
  return intercept(co_resume(co, ...))
end

local function sandbox_close(co)
  if raw_type(co) ~= "thread" then raw_error("bad argument #1 to 'close' (coroutine expected)", 2) end
  local status = co_status(co)
  if status == "running" or status == "normal" then
    raw_error("cannot close a " .. status .. " coroutine", 2)
  end
  -- Closing runs pending __close handlers, which may fail or be stopped.
  return intercept(co_close(co))
end

local function unwrapped(co, ok, ...)
  if ok then return ... end
  local _, e = intercept(false, ...)
  if co_status(co) == "dead" then
    local closed, close_error = intercept(co_close(co))
    if not closed then e = close_error end
  end
  -- Like Lua's own wrap: a string error gets the caller's position.
  if raw_type(e) == "string" then raw_error(e, 2) end
  raw_error(e, 0)
end

local function sandbox_wrap(f)
  if raw_type(f) ~= "function" then raw_error("bad argument #1 to 'wrap' (function expected)", 2) end
  local co = new_coroutine(f)
  return function(...)
    if tripped then raw_error(LIMIT_ERROR, 0) end
    return unwrapped(co, co_resume(co, ...))
  end
end

-- ---------------------------------------------------------------------------
-- Guarded library functions: size checks before C loops the hook never sees,
-- their work charged to the instruction budget. Each calls the C function as a
-- field of `lib`: Lua names a called function after the field key, a constant
-- that survives the debug info stripped from this chunk, so an argument error
-- reads as Lua's ("bad argument #1 to 'rep' ...").

local function string_length(v)
  local vt = raw_type(v)
  if vt == "string" then return #v end
  if vt == "number" then return #raw_tostring(v) end
  return nil
end

local function sandbox_rep(s, n, sep)
  local ls, count = string_length(s), m_tointeger(n)
  local lsep = sep == nil and 0 or string_length(sep)
  if ls and count and lsep and count > 0 then
    local unit = ls + lsep
    -- An empty result still loops n times in C: string.rep('', math.maxinteger).
    if unit == 0 then return "" end
    if count > (max_string + lsep) // unit then trip("max_string_bytes") end
    charge(count * unit // 64)
  end
  return lib.rep(s, n, sep)
end

local function sandbox_format(...)
  local result = lib.format(...)
  if #result > max_string then trip("max_string_bytes") end
  return result
end

local function sandbox_gsub(s, ...)
  if raw_type(s) == "string" then charge(#s // 64) end
  local result, count = lib.gsub(s, ...)
  if #result > max_string then trip("max_string_bytes") end
  return result, count
end

local function sandbox_char(...)
  if raw_select("#", ...) > max_string then trip("max_string_bytes") end
  return lib.char(...)
end

local function sandbox_pack(...)
  return check_string(lib.pack(...))
end

-- Up to four bytes per argument where string.char makes one.
local function sandbox_utf8_char(...)
  return check_string(lib_utf8.char(...))
end

-- Each conversion of the format is a strftime call (about as costly as a few dozen
-- instructions) and may expand two bytes into dozens: os.date(("%c"):rep(n)).
local function sandbox_date(format, ...)
  local n = string_length(format)
  if n then charge(n * 16) end
  local result = lib_os.date(format, ...)
  if raw_type(result) == "string" then check_string(result) end
  return result
end

-- Count of a numeric range [first, last] without integer overflow.
local function span(first, last)
  if m_type(first) ~= "integer" or m_type(last) ~= "integer" or last < first then return 0 end
  return (last + 0.0) - first + 1
end

local function sandbox_concat(t, sep, i, j)
  if not plain(t) then
    -- __index/__len may be C functions: build the pieces in Lua, under the hook.
    if raw_type(t) ~= "table" then raw_error("bad argument #1 to 'concat' (table expected)", 2) end
    local first, last = i or 1, j or #t
    local pieces, n = {}, 0
    for k = first, last do
      local v = t[k]
      local vt = raw_type(v)
      if vt ~= "string" and vt ~= "number" then
        raw_error(s_format("invalid value (at index %d) in table for 'concat'", k), 2)
      end
      n = n + 1
      pieces[n] = v
    end
    t, i, j = pieces, 1, n
  end
  local first, last = i or 1, j or raw_rawlen(t)
  local count = span(first, last)
  -- The C loop stops at the first missing value: a border of t bounds it.
  local bound = raw_rawlen(t) + 1
  charge(count < bound and count or bound)
  local result = lib.concat(t, sep, i, j)
  charge(#result // 64)
  return check_string(result)
end

local function position_error(n, name)
  raw_error(s_format("bad argument #%d to '%s' (position out of bounds)", n, name), 3)
end

local function sandbox_insert(t, ...)
  if plain(t) then
    if raw_select("#", ...) == 2 then charge(raw_rawlen(t)) end
    return lib.insert(t, ...)
  end
  if raw_type(t) ~= "table" then raw_error("bad argument #1 to 'insert' (table expected)", 2) end
  -- __len/__index/__newindex may be C functions: shift in Lua, under the hook.
  local nargs = raw_select("#", ...)
  local e = #t + 1
  if nargs == 1 then
    t[e] = (...)
  elseif nargs == 2 then
    local pos, value = ...
    pos = m_tointeger(pos)
    if not pos or pos < 1 or pos > e then position_error(2, "insert") end
    for k = e, pos + 1, -1 do t[k] = t[k - 1] end
    t[pos] = value
  else
    raw_error("wrong number of arguments to 'insert'", 2)
  end
end

local function sandbox_remove(t, ...)
  if plain(t) then
    if raw_select("#", ...) > 0 then charge(raw_rawlen(t)) end
    return lib.remove(t, ...)
  end
  if raw_type(t) ~= "table" then raw_error("bad argument #1 to 'remove' (table expected)", 2) end
  local size = #t
  local pos = size
  if raw_select("#", ...) > 0 and (...) ~= nil then pos = m_tointeger((...)) end
  if not pos then raw_error("bad argument #2 to 'remove' (number has no integer representation)", 2) end
  if pos ~= size and (pos < 1 or pos > size + 1) then position_error(2, "remove") end
  local value = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return value
end

local function sandbox_move(a1, f, e, t, a2)
  -- Moving nils over a huge range allocates nothing and runs no instruction.
  charge(span(m_tointeger(f), m_tointeger(e)))
  return lib.move(a1, f, e, t, a2)
end

local function sort_cost(n)
  if n < 2 then return n end
  local log2 = 1
  while (1 << log2) < n and log2 < 62 do log2 = log2 + 1 end
  return n * log2
end

local function sandbox_sort(t, comp)
  if raw_type(t) ~= "table" then raw_error("bad argument #1 to 'sort' (table expected)", 2) end
  if plain(t) then
    charge(sort_cost(raw_rawlen(t)))
    return lib.sort(t, comp)
  end
  -- Read the length once (a stateful __len could change it) and sort a plain copy.
  local n = m_tointeger(#t)
  if not n then raw_error("object length is not an integer", 2) end
  charge(sort_cost(n))
  local copy = {}
  for k = 1, n do copy[k] = t[k] end
  lib.sort(copy, comp)
  for k = 1, n do t[k] = copy[k] end
end

local function sandbox_unpack(t, i, j)
  local first = i == nil and 1 or m_tointeger(i)
  local last = j
  if j == nil and raw_type(t) == "table" then last = #t end
  charge(span(first, m_tointeger(last)))
  return lib.unpack(t, i, last)
end

-- ---------------------------------------------------------------------------
-- JSON (arrays are tables with keys exactly 1..n; an empty table encodes as {})

local null = raw_setmetatable({}, {
  __metatable = "json.null",
  __newindex = function() raw_error("json.null is read-only", 2) end,
  __tostring = function() return "null" end,
})

-- Count a table's entries (at most max_entries) and tell whether it is an array.
local function shape(t)
  local count, top, array = 0, 0, true
  for k in raw_next, t do
    count = count + 1
    if count > max_entries then trip("max_table_entries") end
    if array then
      if m_type(k) == "integer" and k > 0 then
        if k > top then top = k end
      else
        array = false
      end
    end
  end
  charge(count)
  return count > 0 and array and top == count, count
end

-- The codec itself (json.lua), loaded once with the runtime. It reads the run's
-- table limit through a getter: a value captured at load would be the first run's.
local codec_encode, codec_decode = raw_load(json_chunk, "=[sandbox]", "b")({
  error = raw_error, type = raw_type, tonumber = raw_tonumber, next = raw_next,
  rawequal = raw_rawequal, rawget = raw_rawget,
  utf8_len = utf8_len, utf8_char = utf8_char, m_type = m_type, m_huge = m_huge, t_concat = t_concat,
  s_format = s_format, s_find = s_find, s_match = s_match, s_gsub = s_gsub, s_byte = s_byte, s_sub = s_sub,
  trip = trip, charge = charge, check_string = check_string, shape = shape, null = null,
  max_entries = function() return max_entries end,
})

-- Encode a value as JSON text, or return nil and the reason it cannot be.
-- Output beyond max_bytes trips the knob `bytes_knob`.
local function encode(value, max_bytes, bytes_knob)
  return codec_encode(value, max_bytes, bytes_knob)
end

-- Decode JSON text ("script" or "host" mode: see json.lua).
local function decode(text, mode)
  return codec_decode(text, mode)
end

local function json_encode(value)
  if tripped then raw_error(LIMIT_ERROR, 0) end
  local text, err = encode(value, max_string, "max_string_bytes")
  if not text then raw_error("json.encode: " .. err, 2) end
  return text
end

local function json_decode(text)
  if tripped then raw_error(LIMIT_ERROR, 0) end
  if raw_type(text) ~= "string" then raw_error("bad argument #1 to 'decode' (string expected)", 2) end
  local value, err = decode(text, "script")
  if err then raw_error("json.decode: " .. err, 2) end
  return value
end

-- ---------------------------------------------------------------------------
-- Logs and host functions

local function log_function(level)
  return function(...)
    if tripped then raw_error(LIMIT_ERROR, 0) end
    local n = raw_select("#", ...)
    local args = {...}
    local parts = {}
    for i = 1, n do parts[i] = raw_tostring(args[i]) end
    local message = check_string(t_concat(parts, " "))
    log_entries = log_entries + 1
    -- The execution log is a table leaving the sandbox: bounded like one.
    if log_entries > max_entries then trip("max_table_entries") end
    output_used = output_used + #message
    if output_used > max_output then trip("max_output_bytes") end
    log_sink(level, message)
  end
end

-- Call host function module.fn. Each host function the script sees is a closure
-- that tail-calls this, so level 2 below is still the script's calling frame.
local function call_host(module, fn, ...)
  if tripped then raw_error(LIMIT_ERROR, 0) end
  local n = raw_select("#", ...)
  local args = {...}
  local parts, budget = {}, MAX_HOST_ARGS_BYTES
  for i = 1, n do
    local text, err = encode(args[i], budget, "max_string_bytes")
    if not text then raw_error(module .. "." .. fn .. ": argument #" .. i .. ": " .. err, 2) end
    parts[i] = text
    budget = budget - #text - 1
  end
  local status, payload = host_call(module, fn, "[" .. t_concat(parts, ",") .. "]")
  if status == "ok" then
    local value, err = decode(payload, "host")
    if err then trip("internal", module .. "." .. fn .. ": invalid result: " .. err) end
    return value
  elseif status == "error" then
    if payload == MEMERR then payload = MEMERR_BY_SCRIPT end
    raw_error(payload, 2)
  elseif status == "oom" then
    trip("max_memory_bytes")
  elseif status == "limit" then
    -- The host counted past a knob (max_http_requests, a response over max_string_bytes).
    trip(payload)
  end
  trip("internal", payload)
end

-- ---------------------------------------------------------------------------
-- http, secrets, crypto, encoding, time and require (world.lua, docs/api.md §11-§13):
-- loaded once at boot, off the request's path; install_world(env) gives each run
-- its own tables.

local install_world = raw_load(world_chunk, "=[sandbox]", "b")({
  call_host = call_host, helper = helper_call, trip = trip, charge = charge, check_string = check_string,
  intercept = intercept, clean = clean, error = raw_error, type = raw_type, next = raw_next,
  pcall = raw_pcall, load = raw_load, rawget = raw_rawget, rawset = raw_rawset,
  setmetatable = raw_setmetatable, s_format = s_format, m_tointeger = m_tointeger,
  utf8_len = utf8_len, MEMERR = MEMERR,
})

-- ---------------------------------------------------------------------------
-- The script's environment

local function sandbox_error(message, level)
  if message == MEMERR then message = MEMERR_BY_SCRIPT end
  level = level == nil and 1 or m_tointeger(level)
  if not level then raw_error("bad argument #2 to 'error' (number has no integer representation)", 2) end
  raw_error(message, level > 0 and level + 1 or level)
end

local function sandbox_assert(v, ...)
  if v then return v, ... end
  if raw_select("#", ...) == 0 then raw_error("assertion failed!", 2) end
  local message = ...
  if message == MEMERR then message = MEMERR_BY_SCRIPT end
  raw_error(message, 2)
end

local function sandbox_setmetatable(t, mt)
  -- Finalizers run with hooks off, even when the runtime is closed.
  if raw_type(mt) == "table" and raw_rawget(mt, "__gc") ~= nil then
    raw_error("setmetatable: __gc metamethods are not allowed", 2)
  end
  return lib.setmetatable(t, mt)
end

-- Relative to the heap when the run started: the runtime's own size (and what
-- earlier runs left for the collector) is none of the script's business.
local function sandbox_collectgarbage(option)
  if option == "count" then
    local kb = raw_collectgarbage("count") - baseline_kb
    return kb > 0 and kb or 0
  end
  raw_error("collectgarbage: only \"count\" is allowed", 2)
end

-- json.null is shared by every run of the runtime: its metatable refuses writes,
-- and rawset, the one raw write a script has, refuses it too.
local function sandbox_rawset(t, k, v)
  if raw_rawequal(t, null) then raw_error("json.null is read-only", 2) end
  return raw_rawset(t, k, v)
end

-- The run's own script coroutine stands for the main thread: a script cannot
-- yield out of its run, as it could not yield out of the main thread.
local function sandbox_yield(...)
  if co_running() == script_thread then raw_error("attempt to yield from outside a coroutine", 0) end
  return co_yield(...)
end

local function sandbox_isyieldable()
  return co_running() ~= script_thread and co_isyieldable()
end

local function sandbox_running()
  local co = co_running()
  return co, co == script_thread
end

local function sandbox_load(...)
  local chunk, name = ...
  local ct = raw_type(chunk)
  if ct ~= "string" and ct ~= "function" then raw_error("bad argument #1 to 'load' (string expected)", 2) end
  if name ~= nil and raw_type(name) ~= "string" then raw_error("bad argument #2 to 'load' (string expected)", 2) end
  if ct == "string" then charge(#chunk // 16) end
  local target = env
  if raw_select("#", ...) >= 4 then target = raw_select(4, ...) end
  -- Text only: a binary chunk can crash the interpreter.
  local f, err = raw_load(chunk, name, "t", target)
  -- load catches errors of a reader function: the run may have to end anyway.
  if tripped then raw_error(LIMIT_ERROR, 0) end
  if f == nil and err == MEMERR then trip("max_memory_bytes") end
  return f, clean(err)
end

-- The master tables: every run gets copies of these (make_env), so what a run
-- does to its `string` or `table` never reaches another run, and the masters are
-- never reachable from script code. Method calls on strings ("a"):rep(n) go
-- through the run's own string table (begin_run points the string metatable at it).
-- A new standard module: add its master table to `libraries`; a new plain global:
-- add it to `builtins`. Boot code calls only what it captured above.
string_lib.dump = nil
string_lib.rep, string_lib.format, string_lib.gsub = sandbox_rep, sandbox_format, sandbox_gsub
string_lib.char, string_lib.pack = sandbox_char, sandbox_pack
table_lib.concat, table_lib.insert, table_lib.remove = sandbox_concat, sandbox_insert, sandbox_remove
table_lib.move, table_lib.sort, table_lib.unpack = sandbox_move, sandbox_sort, sandbox_unpack
utf8_lib.char = sandbox_utf8_char
coroutine_lib.create, coroutine_lib.resume = sandbox_create, sandbox_resume
coroutine_lib.wrap, coroutine_lib.close = sandbox_wrap, sandbox_close
coroutine_lib.yield, coroutine_lib.isyieldable, coroutine_lib.running = sandbox_yield, sandbox_isyieldable, sandbox_running

local log = {info = log_function("info"), warn = log_function("warn"), error = log_function("error")}

local libraries = {
  string = string_lib, table = table_lib, math = math_lib, utf8 = utf8_lib, coroutine = coroutine_lib,
  -- CPU seconds of this run: the process's own clock would tell a script how busy
  -- the executor was with other apps' runs.
  os = {time = os_time, date = sandbox_date, clock = function() return os_clock() - clock_base end},
  json = {encode = json_encode, decode = json_decode, null = null},
  log = log,
}

local builtins = {
  print = log.info,
  pairs = raw_pairs, ipairs = raw_ipairs, next = raw_next, select = raw_select,
  type = raw_type, tostring = raw_tostring, tonumber = raw_tonumber,
  rawget = raw_rawget, rawset = sandbox_rawset, rawequal = raw_rawequal, rawlen = raw_rawlen,
  getmetatable = raw_getmetatable, setmetatable = sandbox_setmetatable,
  pcall = sandbox_pcall, xpcall = sandbox_xpcall, error = sandbox_error, assert = sandbox_assert,
  load = sandbox_load, collectgarbage = sandbox_collectgarbage,
}

-- Return the Lua text of a constructor for `master`'s fields read from `var`.
local function fields_source(var, master)
  local parts, n = {}, 0
  for key in raw_next, master do
    n = n + 1
    parts[n] = s_format("[%q] = %s[%q]", key, var, key)
  end
  return t_concat(parts, ", ")
end

-- Build make_env(): one generated table constructor per run makes every table at
-- its final size, far cheaper than copying the masters field by field.
local function environment_constructor()
  local names, n = {}, 0
  for name in raw_next, libraries do
    n = n + 1
    names[n] = name
  end
  local head, body = {"local builtins, libraries = ...\n"}, {}
  for i = 1, n do
    local var = "master_" .. names[i]
    head[i + 1] = s_format("local %s = libraries[%q]\n", var, names[i])
    body[i] = s_format("[%q] = {%s}", names[i], fields_source(var, libraries[names[i]]))
  end
  local source = t_concat(head) .. "return function() return {" .. fields_source("builtins", builtins)
      .. ", " .. t_concat(body, ", ") .. "} end"
  return raw_load(source, "=[sandbox]", "t", nil)(builtins, libraries)
end

local make_env = environment_constructor()

-- ---------------------------------------------------------------------------
-- Hide the real globals and modules: only the closures above keep what they need.

for _, name in raw_next, {"_G", "package", "debug", "io", "os", "python"} do loaded[name] = nil end
for name in raw_next, real_globals do real_globals[name] = nil end

-- ---------------------------------------------------------------------------
-- Entry points for the executor (Python)

-- Return the message of an error value, without running more than the hook allows.
local function describe(e)
  local et = raw_type(e)
  if et == "string" then return s_sub(clean(e), 1, MAX_ERROR_BYTES) end
  if et == "number" then return raw_tostring(e) end
  if et == "table" and debug_getmetatable(e) then
    local ok, text = raw_pcall(raw_tostring, e)
    if ok and raw_type(text) == "string" then return s_sub(text, 1, MAX_ERROR_BYTES) end
  end
  return "(error object is a " .. et .. " value)"
end

local TEXT = "text/plain; charset=utf-8"
local JSON = "application/json"
local TOKEN = "^[A-Za-z0-9!#$%%&'*+%-.^_`|~]+$"
local BAD_HEADER_VALUE = "[\0-\8\10-\31\127]"

-- Add one header line; return an error message if it is invalid.
local function header_line(lines, name, value)
  if raw_type(name) ~= "string" or not s_find(name, TOKEN) then return "invalid header name" end
  local vt = raw_type(value)
  if vt == "number" and m_type(value) == "integer" then value = s_format("%d", value)
  elseif vt ~= "string" then return "header " .. name .. " must be a string" end
  check_string(value)
  if s_find(value, BAD_HEADER_VALUE) then return "header " .. name .. " contains a control character" end
  lines[#lines + 1] = name .. ":" .. value .. "\n"
end

local function response_headers(headers)
  local lines, content_type = {}, false
  if headers == nil then return lines, false end
  if raw_type(headers) ~= "table" then return nil, "headers must be a table" end
  local _, count = shape(headers)
  if count > max_entries then trip("max_table_entries") end
  for name, value in raw_next, headers do
    local err
    if raw_type(value) == "table" and not raw_rawequal(value, null) then
      -- A list of values: the header repeats (Set-Cookie).
      local array, n = shape(value)
      if not array and n > 0 then return nil, "header values must be strings or a list of strings" end
      for i = 1, n do
        err = header_line(lines, name, raw_rawget(value, i))
        if err then break end
      end
    else
      err = header_line(lines, name, value)
    end
    if err then return nil, err end
    if s_lower(name) == "content-type" then content_type = true end
  end
  return lines, content_type
end

local function response(status, lines, has_type, body, default_type)
  if #body > max_output - output_used then trip("max_output_bytes") end
  -- A string body is a string leaving the sandbox; a JSON body was built here.
  if default_type == TEXT then check_string(body) end
  if not has_type and default_type then lines[#lines + 1] = "Content-Type:" .. default_type .. "\n" end
  return "ok", status, t_concat(lines), body
end

local function json_body(value)
  local text, err = encode(value, max_output - output_used, "max_output_bytes")
  if not text then return nil, err end
  return text
end

-- Map the script's return value to a response (docs/api.md §6), or ("bad", reason).
local function make_response(value)
  local vt = raw_type(value)
  if vt == "nil" then return response(204, {}, true, "", nil) end
  if vt == "string" then return response(200, {}, false, value, TEXT) end
  if vt == "table" and not raw_rawequal(value, null) and raw_rawget(value, "status") ~= nil then
    local status = raw_rawget(value, "status")
    status = raw_type(status) == "number" and m_tointeger(status)
    -- 1xx are interim answers in HTTP: sent as the final one, the client would wait on.
    if not status or status < 200 or status > 599 then
      return "bad", "status must be an integer from 200 to 599"
    end
    local lines, has_type = response_headers(raw_rawget(value, "headers"))
    if not lines then return "bad", has_type end
    local body = raw_rawget(value, "body")
    local bt = raw_type(body)
    if bt == "nil" then return response(status, lines, true, "", nil) end
    if bt == "string" then return response(status, lines, has_type, body, TEXT) end
    if bt == "table" or bt == "number" or bt == "boolean" then
      local text, err = json_body(body)
      if not text then return "bad", err end
      return response(status, lines, has_type, text, JSON)
    end
    return "bad", "body must be a string or a table, not a " .. bt
  end
  if vt == "table" or vt == "number" or vt == "boolean" then
    local text, err = json_body(value)
    if not text then return "bad", err end
    return response(200, {}, false, text, JSON)
  end
  return "bad", "a " .. vt .. " cannot be a response"
end

local api = {}

-- A table no script can write, the environment of a cached chunk between runs.
local sealed = raw_setmetatable({}, {
  __metatable = false,
  __index = function() raw_error("no run in progress", 2) end,
  __newindex = function() raw_error("no run in progress", 2) end,
})

-- Point the first upvalue (_ENV) of a compiled chunk at `value` in a fresh cell:
-- closures an earlier run made keep the cell of their own run.
local function bind_env(chunk, value)
  debug_upvaluejoin(chunk, 1, function() return value end, 1)
end

-- Compile a script once per version; return the chunk, or nil and the message.
function api.compile(source, chunk_name)
  local fn, message = raw_load(source, "=" .. chunk_name, "t", sealed)
  if not fn then return nil, s_sub(message, 1, MAX_ERROR_BYTES) end
  return fn
end

-- Restore the string metatable to what Lua made, its methods from `index`.
local function reset_string_metatable(index)
  for key in raw_next, string_metatable do string_metatable[key] = nil end
  for key, value in raw_next, string_metamethods do string_metatable[key] = value end
  string_metatable.__index = index
end

-- Host modules offered to runs: for each spec text, the names and master tables
-- of its modules (closures shared by runs; each run gets fresh tables).
local host_modules, host_specs = {}, 0
local MAX_HOST_SPECS = 16

-- Return {name, master, ...} for a host spec: one line per module, its name and
-- then its functions, separated by spaces (identifiers checked by the pool).
local function host_masters(spec)
  local masters = host_modules[spec]
  if masters then return masters end
  if host_specs >= MAX_HOST_SPECS then host_modules, host_specs = {}, 0 end
  masters = {}
  for line in s_gmatch(spec, "[^\n]+") do
    local name, module = nil, {}
    for word in s_gmatch(line, "[^ ]+") do
      if name == nil then
        name = word
      else
        module[word] = function(...) return call_host(name, word, ...) end
      end
    end
    masters[#masters + 1] = name
    masters[#masters + 1] = module
  end
  host_modules[spec], host_specs = masters, host_specs + 1
  return masters
end

-- Reset every piece of per-run state: the one place a run starts from.
local function begin_run(instructions, depth, string_bytes, table_entries, output_bytes,
                         chunk_name, chunk, seed1, seed2)
  max_instructions, max_call_depth = instructions, depth
  max_string, max_entries, max_output = string_bytes, table_entries, output_bytes
  -- getinfo(level) finds a frame only when the stack is deeper than the limit:
  -- level 1 is the hook; the main thread also has the runner and its pcall below.
  coroutine_probe = max_call_depth + 2
  main_probe = max_call_depth + 4
  used, tripped, tripped_line, internal_message = 0, nil, nil, nil
  output_used, log_entries = 0, 0
  chunk_source = "=" .. chunk_name
  script_main, script_thread = chunk, nil
  env = make_env()
  reset_string_metatable(env.string)
  m_randomseed(seed1, seed2)
  clock_base = os_clock()
end

-- Prepare a run: limits, host modules, globals, the compiled chunk. The globals
-- arrive as a table the executor built (runtime.py), with what decoding them
-- would have cost the script and the heap bytes they take: they count as the
-- script's own, the environment built here does not.
function api.setup(instructions, depth, string_bytes, table_entries, output_bytes,
                   chunk_name, chunk, globals, globals_cost, globals_bytes, host_spec, seed1, seed2)
  begin_run(instructions, depth, string_bytes, table_entries, output_bytes,
            chunk_name, chunk, seed1, seed2)
  local ok, err = raw_pcall(function()
    charge(globals_cost)
    local masters = host_masters(host_spec)
    for i = 1, #masters, 2 do
      local module = {}
      for fn, closure in raw_next, masters[i + 1] do module[fn] = closure end
      env[masters[i]] = module
    end
    install_world(env)
    for name, value in raw_next, globals do env[name] = value end
  end)
  if tripped then return api.report() end
  if not ok then return "internal", describe(err) end
  bind_env(chunk, env)
  baseline_kb = raw_collectgarbage("count") - globals_bytes / 1024
  peak_kb = baseline_kb
  return "ok"
end

-- Run the script in a fresh coroutine under the hook and map its result; return
-- the outcome as plain values: kind ("ok", "error", "bad", "limit", "internal")
-- and its details. A to-be-closed variable left open by a failed run stays in
-- that dead coroutine: it is never closed, in this run or any later one.
function api.run()
  script_thread = new_coroutine(script_main)
  -- What runs here after the script (its error's __tostring, the response) is
  -- under the hook as well.
  intervals[co_running()] = FIRST_INTERVAL
  debug_sethook(count_hook, "", FIRST_INTERVAL)
  clock_base = os_clock()
  local ok, result = co_resume(script_thread)
  if ok and co_status(script_thread) ~= "dead" and not tripped then
    ok, result = false, "attempt to yield from outside a coroutine"
  end
  local kind, a, b, c = nil, nil, nil, nil
  if ok and not tripped then
    local mapped, k, x, y, z = raw_pcall(make_response, result)
    if mapped then
      kind, a, b, c = k, x, y, z
    elseif not tripped then
      if k == MEMERR then tripped = "max_memory_bytes" else kind, a = "internal", describe(k) end
    end
  elseif not ok and not tripped then
    if result == MEMERR then
      tripped = "max_memory_bytes"
    else
      local found, line = raw_pcall(script_line, script_thread)
      -- As a protected call would unwind it: pending __close handlers run, under
      -- the hook, and an error of theirs replaces the script's.
      local closed, close_error = co_close(script_thread)
      if not closed and not tripped then
        if close_error == MEMERR then tripped = "max_memory_bytes" else result = close_error end
      end
      kind, a, b = "error", describe(result), found and line or nil
    end
  end
  debug_sethook()
  if tripped then return api.report() end
  return kind, a, b, c
end

-- Return why the run was stopped, if it was: ("limit", knob, line) or ("internal", message).
function api.report()
  if tripped == "internal" then return "internal", internal_message or "host failure" end
  if tripped then return "limit", tripped, tripped_line end
  return nil
end

-- Return (instructions, peak Lua heap bytes above the run's start).
function api.usage()
  local kb = raw_collectgarbage("count")
  if kb > peak_kb then peak_kb = kb end
  local peak = m_floor((peak_kb - baseline_kb) * 1024)
  return used, peak > 0 and peak or 0
end

-- End a run: drop everything it made from the shared state, collect it all, and
-- return the heap bytes left (the runtime's own size, for its recycling bound).
function api.finish()
  debug_sethook()
  if script_main then bind_env(script_main, sealed) end
  reset_string_metatable(string_lib)
  env, script_main, script_thread = nil, nil, nil
  tripped, internal_message = "finished", nil
  for co in raw_next, intervals do intervals[co] = nil end
  raw_collectgarbage("collect")
  return raw_collectgarbage("count") * 1024
end

-- As separate values: one crossing for the executor instead of a lookup per entry
-- point; json.null for the tables of the job's globals.
api.sethook = debug_sethook
return api.compile, api.setup, api.run, api.report, api.usage, api.finish, api.sethook, null
