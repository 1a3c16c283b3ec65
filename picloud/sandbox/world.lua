--[[
What scripts reach beyond their own data (docs/api.md §11-§13): http, secrets, crypto,
encoding, time and require. boot.lua loads it, as bytecode like itself, with the
functions it captured before any script code ran, and calls the function this
chunk returns once per run to put fresh tables into the run's environment.

boot.lua's rules hold here: no metamethod of a script's table runs (raw access
only), and every error a script can see is raised at the script's own level.

- http.*, secrets.NAME and require() are host calls: the web process makes the
  request, opens the secret, finds the module's source (of the same app only).
- crypto/encoding/time are computed by the executor's Python (helpers.py) through
  `helper(name, ...)`, which returns a status and a plain value.
]]
local boot = ...
local call_host, helper, trip, charge, check_string = boot.call_host, boot.helper, boot.trip, boot.charge, boot.check_string
local rethrow, clean = boot.intercept, boot.clean
local raw_error, raw_type, raw_next, raw_pcall, raw_load = boot.error, boot.type, boot.next, boot.pcall, boot.load
local raw_rawget, raw_rawset, raw_setmetatable = boot.rawget, boot.rawset, boot.setmetatable
local s_format, m_tointeger, utf8_len = boot.s_format, boot.m_tointeger, boot.utf8_len
local MEMERR = boot.MEMERR
local _ENV = nil

-- Call a Python helper; level is the script's frame as seen from here.
local function compute(level, name, ...)
  local status, value = helper(name, ...)
  if status == "ok" then return value end
  if status == "error" then raw_error(value, level + 1) end
  if status == "limit" then trip(value) end
  if status == "oom" then trip("max_memory_bytes") end
  trip("internal", value)
end

local function need_string(value, n, fname)
  if raw_type(value) ~= "string" then
    raw_error(s_format("bad argument #%d to '%s' (string expected, got %s)", n, fname, raw_type(value)), 3)
  end
  return value
end

-- One-string helpers: crypto.sha256(s), encoding.hex_encode(s)...
local function string_helper(name)
  return function(s)
    need_string(s, 1, name)
    charge(#s // 64)
    local result = compute(2, name, s)
    return result
  end
end

local function hmac(algorithm, key, data)
  need_string(algorithm, 1, "hmac")
  need_string(key, 2, "hmac")
  need_string(data, 3, "hmac")
  charge((#key + #data) // 64)
  local result = compute(2, "hmac", algorithm, key, data)
  return result
end

local function random_bytes(n)
  local count = m_tointeger(n)
  if not count then raw_error("bad argument #1 to 'random_bytes' (integer expected)", 2) end
  local result = compute(2, "random_bytes", count)
  return result
end

local function equals(a, b)
  need_string(a, 1, "equals")
  need_string(b, 2, "equals")
  charge((#a + #b) // 64)
  local result = compute(2, "equals", a, b)
  return result
end

local function new_uuid()
  local result = compute(2, "uuid")
  return result
end

local function now()
  local result = compute(2, "now")
  return result
end

local function iso(t)
  if t ~= nil and raw_type(t) ~= "number" then
    raw_error("bad argument #1 to 'iso' (number expected, got " .. raw_type(t) .. ")", 2)
  end
  local result = compute(2, "iso", t)
  return result
end

-- ---------------------------------------------------------------------------
-- http (docs/api.md §11)

local REQUEST_FIELDS = {method = true, url = true, headers = true, body = true, timeout_ms = true, follow_redirects = true}

-- Copy a request's fields without running the script's metamethods; a string body
-- travels as base64 unless it is UTF-8 (the host call is JSON).
local function request_args(opts, level)
  local args = {}
  for key, value in raw_next, opts do
    if raw_type(key) ~= "string" or not REQUEST_FIELDS[key] then
      raw_error("http.request: unknown option " .. s_format("%q", key), level + 1)
    end
    if key == "body" then
      local bt = raw_type(value)
      if bt == "string" then
        check_string(value)
        if utf8_len(value) then args.body = value else args.body_base64 = compute(level, "wire_base64", value) end
      elseif bt == "table" then
        args.json = value
      else
        raw_error("http.request: body must be a string or a table, not a " .. bt, level + 1)
      end
    else
      args[key] = value
    end
  end
  return args
end

local function send(args)
  local response = call_host("http", "request", args)
  local failure = raw_rawget(response, "error")
  if failure ~= nil then return nil, failure end
  return response
end

local function request(opts)
  if raw_type(opts) ~= "table" then raw_error("bad argument #1 to 'request' (table expected)", 2) end
  local response, failure = send(request_args(opts, 2))
  return response, failure
end

local function with_options(method, url, opts, level)
  if opts ~= nil and raw_type(opts) ~= "table" then
    raw_error("http: options must be a table", level + 1)
  end
  local args = opts and request_args(opts, level + 1) or {}
  args.method, args.url = method, url
  return args
end

local function get(url, opts)
  local response, failure = send(with_options("GET", url, opts, 2))
  return response, failure
end

local function post(url, body, opts)
  local args = with_options("POST", url, opts, 2)
  if body ~= nil then
    local extra = request_args({body = body}, 2)
    args.body, args.body_base64, args.json = extra.body, extra.body_base64, extra.json
  end
  local response, failure = send(args)
  return response, failure
end

-- ---------------------------------------------------------------------------
-- secrets (docs/api.md §12): read-only, each name asked of the host once per run

local function secrets_table()
  local seen = {}
  return raw_setmetatable({}, {
    __metatable = "secrets",
    __index = function(_, name)
      if raw_type(name) ~= "string" then return nil end
      local value = raw_rawget(seen, name)
      if value == nil then
        value = call_host("secrets", "get", name)
        if value == nil then value = false end
        raw_rawset(seen, name, value)
      end
      return value or nil
    end,
    __newindex = function() raw_error("secrets are read-only", 2) end,
  })
end

-- ---------------------------------------------------------------------------
-- require (docs/api.md §13): the app's own scripts, each run once per execution

local function new_require(env)
  local loaded, loading = {}, {}
  return function(name)
    if raw_type(name) ~= "string" then raw_error("bad argument #1 to 'require' (string expected)", 2) end
    local cached = raw_rawget(loaded, name)
    if cached ~= nil then return cached end
    if raw_rawget(loading, name) then
      raw_error("require: module '" .. name .. "' is required again while it loads (a require cycle)", 2)
    end
    local source = call_host("modules", "source", name)
    if source == nil then raw_error("module '" .. name .. "' not found (no script of this app has that name)", 2) end
    charge(#source // 16)
    local fn, err = raw_load(source, "=" .. name, "t", env)
    if not fn then
      if err == MEMERR then trip("max_memory_bytes") end
      raw_error("module '" .. name .. "' does not compile: " .. clean(err), 2)
    end
    raw_rawset(loading, name, true)
    local ok, result = rethrow(raw_pcall(fn, name))
    raw_rawset(loading, name, nil)
    if not ok then raw_error(result, 0) end
    if result == nil then result = true end
    raw_rawset(loaded, name, result)
    return result
  end
end

-- Put this run's tables into its environment (after the host modules are set).
return function(env)
  env.http = {request = request, get = get, post = post}
  env.secrets = secrets_table()
  env.modules = nil
  env.crypto = {
    sha1 = string_helper("sha1"), sha256 = string_helper("sha256"), hmac = hmac,
    random_bytes = random_bytes, uuid = new_uuid, equals = equals,
  }
  env.encoding = {
    hex_encode = string_helper("hex_encode"), hex_decode = string_helper("hex_decode"),
    base64_encode = string_helper("base64_encode"), base64_decode = string_helper("base64_decode"),
    base64url_encode = string_helper("base64url_encode"), base64url_decode = string_helper("base64url_decode"),
    url_encode = string_helper("url_encode"), url_decode = string_helper("url_decode"),
  }
  env.time = {now = now, iso = iso}
  env.require = new_require(env)
end
