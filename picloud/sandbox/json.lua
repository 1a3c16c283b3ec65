--[[
The sandbox's JSON codec: json.encode/decode, host call arguments and results,
table responses. boot.lua loads it, as bytecode like itself, once per runtime.

boot.lua's rules hold here: no metamethod of a script's table runs, and only the
functions boot.lua captured before any script code ran are used, handed over in
one table. The runtime serves many runs, each with its own limits: a limit is read
through its getter when a call starts, never kept from one call to the next.
]]
local boot = ...
local raw_error, raw_type, raw_tonumber, raw_next = boot.error, boot.type, boot.tonumber, boot.next
local raw_rawequal, raw_rawget = boot.rawequal, boot.rawget
local utf8_len, utf8_char, m_type, m_huge, t_concat = boot.utf8_len, boot.utf8_char, boot.m_type, boot.m_huge, boot.t_concat
local s_format, s_find, s_match, s_gsub, s_byte, s_sub =
    boot.s_format, boot.s_find, boot.s_match, boot.s_gsub, boot.s_byte, boot.s_sub
local trip, charge, check_string, shape, null = boot.trip, boot.charge, boot.check_string, boot.shape, boot.null
local entries_limit = boot.max_entries
local _ENV = nil

local MAX_JSON_DEPTH = 256

-- Every byte quote() escapes, written out: building it at boot costs more than loading it.
local ESCAPES = {
  ["\0"] = "\\u0000", ["\1"] = "\\u0001", ["\2"] = "\\u0002", ["\3"] = "\\u0003", ["\4"] = "\\u0004", ["\5"] = "\\u0005",
  ["\6"] = "\\u0006", ["\7"] = "\\u0007", ["\8"] = "\\b", ["\9"] = "\\t", ["\10"] = "\\n", ["\11"] = "\\u000b",
  ["\12"] = "\\f", ["\13"] = "\\r", ["\14"] = "\\u000e", ["\15"] = "\\u000f", ["\16"] = "\\u0010", ["\17"] = "\\u0011",
  ["\18"] = "\\u0012", ["\19"] = "\\u0013", ["\20"] = "\\u0014", ["\21"] = "\\u0015", ["\22"] = "\\u0016", ["\23"] = "\\u0017",
  ["\24"] = "\\u0018", ["\25"] = "\\u0019", ["\26"] = "\\u001a", ["\27"] = "\\u001b", ["\28"] = "\\u001c", ["\29"] = "\\u001d",
  ["\30"] = "\\u001e", ["\31"] = "\\u001f", ["\34"] = "\\\"", ["\92"] = "\\\\", ["\127"] = "\\u007f",
}

local function quote(s)
  check_string(s)
  if not utf8_len(s) then return nil, "invalid UTF-8 in string" end
  return '"' .. (s_gsub(s, '[\0-\31\127"\\]', ESCAPES)) .. '"'
end

local function number_text(v)
  if m_type(v) == "integer" then return s_format("%d", v) end
  if v ~= v or v == m_huge or v == -m_huge then return nil, "cannot encode NaN or infinity" end
  -- The shortest form that reads back as the same number.
  local text = s_format("%.15g", v)
  if raw_tonumber(text) ~= v then text = s_format("%.16g", v) end
  if raw_tonumber(text) ~= v then text = s_format("%.17g", v) end
  return text
end

local function scalar_text(v)
  local vt = raw_type(v)
  if vt == "string" then return quote(v) end
  if vt == "number" then return number_text(v) end
  if vt == "boolean" then return v and "true" or "false" end
  if vt == "nil" or raw_rawequal(v, null) then return "null" end
  return nil, "cannot encode a " .. vt
end

local function key_text(k)
  local kt = raw_type(k)
  if kt == "string" then return quote(k) end
  if m_type(k) == "integer" then return '"' .. s_format("%d", k) .. '"' end
  return nil, "cannot encode a " .. (kt == "number" and "non-integer number" or kt) .. " key"
end

-- Encode a value as JSON text, or return nil and the reason it cannot be.
-- Output beyond max_bytes trips the knob `bytes_knob`.
local function encode(value, max_bytes, bytes_knob)
  local out, n, size = {}, 0, 0
  local function put(s)
    n = n + 1
    out[n] = s
    size = size + #s
    if size > max_bytes then trip(bytes_knob) end
  end
  local stack, depth, open = {}, 0, {}
  local v = value
  while true do
    if raw_type(v) == "table" and not raw_rawequal(v, null) then
      if open[v] then return nil, "cannot encode a table that contains itself" end
      if depth >= MAX_JSON_DEPTH then return nil, "cannot encode tables nested deeper than " .. MAX_JSON_DEPTH end
      local array, count = shape(v)
      depth = depth + 1
      open[v] = true
      stack[depth] = {t = v, array = array, count = count, index = 0, key = nil}
      put(array and "[" or "{")
    else
      local text, err = scalar_text(v)
      if not text then return nil, err end
      put(text)
    end
    -- Find the next value to write, closing finished containers.
    local found = false
    while depth > 0 do
      local frame = stack[depth]
      if frame.array then
        local index = frame.index + 1
        if index <= frame.count then
          if index > 1 then put(",") end
          frame.index = index
          v, found = raw_rawget(frame.t, index), true
          break
        end
        put("]")
      else
        local k, item = raw_next(frame.t, frame.key)
        if k ~= nil then
          local text, err = key_text(k)
          if not text then return nil, err end
          if frame.key ~= nil then put(",") end
          frame.key = k
          put(text)
          put(":")
          v, found = item, true
          break
        end
        put("}")
      end
      open[frame.t] = nil
      stack[depth] = nil
      depth = depth - 1
    end
    if not found then break end
  end
  return t_concat(out)
end

local UNESCAPES = {[34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
                   [110] = "\n", [114] = "\r", [116] = "\t"}
local NULL_MARK = {}

-- Parse the JSON string starting at the quote at pos; return it and the next position.
local function parse_string(text, pos)
  local i, parts, n = pos + 1, nil, 0
  while true do
    local j = s_find(text, '["\\\0-\31]', i)
    if not j then return nil, "unterminated string" end
    local c = s_byte(text, j)
    if c == 34 then
      local s = s_sub(text, i, j - 1)
      if parts then
        parts[n + 1] = s
        s = t_concat(parts)
      end
      return check_string(s), j + 1
    elseif c == 92 then
      parts = parts or {}
      n = n + 1
      parts[n] = s_sub(text, i, j - 1)
      local e = s_byte(text, j + 1)
      if e == 117 then
        local hex = s_match(text, "^%x%x%x%x", j + 2)
        if not hex then return nil, "invalid \\u escape" end
        local cp = raw_tonumber(hex, 16)
        i = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local low = s_match(text, "^\\u(%x%x%x%x)", i)
          low = low and raw_tonumber(low, 16)
          if not low or low < 0xDC00 or low > 0xDFFF then return nil, "invalid surrogate pair" end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
          i = i + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          return nil, "invalid surrogate pair"
        end
        n = n + 1
        parts[n] = utf8_char(cp)
      else
        local r = UNESCAPES[e]
        if not r then return nil, "invalid escape" end
        n = n + 1
        parts[n] = r
        i = j + 2
      end
    else
      return nil, "control character in string"
    end
  end
end

local function parse_number(text, pos)
  local digits_end = s_match(text, "^-?%d+()", pos)
  if not digits_end then return nil, "invalid number" end
  if s_match(text, "^-?0%d", pos) then return nil, "invalid number" end
  local p = digits_end
  if s_byte(text, p) == 46 then
    p = s_match(text, "^%d+()", p + 1)
    if not p then return nil, "invalid number" end
  end
  local e = s_byte(text, p)
  if e == 101 or e == 69 then
    p = s_match(text, "^[+-]?%d+()", p + 1)
    if not p then return nil, "invalid number" end
  end
  local v = raw_tonumber(s_sub(text, pos, p - 1))
  if not v or v ~= v or v == m_huge or v == -m_huge then return nil, "number out of range" end
  return v, p
end

local LITERALS = {[116] = {"true", true}, [102] = {"false", false}, [110] = {"null", NULL_MARK}}

-- Parse a JSON object key and its colon; return the key and the next position.
local function parse_key(text, pos)
  if s_byte(text, pos) ~= 34 then return nil, "expected a string key" end
  local key, p = parse_string(text, pos)
  if not key then return nil, p end
  p = s_match(text, "^[ \t\r\n]*()", p)
  if s_byte(text, p) ~= 58 then return nil, "expected ':'" end
  return key, s_match(text, "^[ \t\r\n]*()", p + 1)
end

-- Decode JSON text. Modes differ in what null becomes:
--   "script"  json.null everywhere (json.decode; the text must be UTF-8)
--   "host"    nil at the top, json.null inside tables (host function results)
local function decode(text, mode)
  if mode == "script" and not utf8_len(text) then return nil, "invalid UTF-8" end
  local max_entries = entries_limit()
  charge(#text // 16)
  local ws = "^[ \t\r\n]*()"
  local pos = s_match(text, ws, 1)
  local stack, depth = {}, 0
  local value
  while true do
    local c = s_byte(text, pos)
    local opened = false
    if c == 123 or c == 91 then
      if depth >= MAX_JSON_DEPTH then return nil, "nested deeper than " .. MAX_JSON_DEPTH end
      local frame = {t = {}, array = c == 91, n = 0, key = nil}
      depth = depth + 1
      stack[depth] = frame
      pos = s_match(text, ws, pos + 1)
      local close = s_byte(text, pos)
      if close == (frame.array and 93 or 125) then
        pos = pos + 1
        value = frame.t
        stack[depth] = nil
        depth = depth - 1
      else
        opened = true
        if not frame.array then
          local key, p = parse_key(text, pos)
          if not key then return nil, p end
          frame.key, pos = key, p
        end
      end
    elseif c == 34 then
      local s, p = parse_string(text, pos)
      if not s then return nil, p end
      value, pos = s, p
    elseif c == 45 or (c and c >= 48 and c <= 57) then
      local v, p = parse_number(text, pos)
      if not v then return nil, p end
      value, pos = v, p
    elseif LITERALS[c] then
      local word, v = LITERALS[c][1], LITERALS[c][2]
      if s_sub(text, pos, pos + #word - 1) ~= word then return nil, "invalid literal" end
      value, pos = v, pos + #word
    else
      return nil, c and "unexpected character" or "unexpected end of text"
    end
    if not opened then
      -- A complete value: store it in its container, closing the ones that end here.
      while true do
        if depth == 0 then
          pos = s_match(text, ws, pos)
          if pos <= #text then return nil, "unexpected text after the value" end
          if raw_rawequal(value, NULL_MARK) then
            if mode == "script" then return null end
            return nil
          end
          return value
        end
        local frame = stack[depth]
        local n = frame.n + 1
        if n > max_entries then trip("max_table_entries") end
        frame.n = n
        if raw_rawequal(value, NULL_MARK) then
          if frame.array then
            frame.t[n] = null
          else
            frame.t[frame.key] = null
          end
        elseif frame.array then
          frame.t[n] = value
        else
          frame.t[frame.key] = value
        end
        pos = s_match(text, ws, pos)
        local d = s_byte(text, pos)
        if d == 44 then
          pos = s_match(text, ws, pos + 1)
          if not frame.array then
            local key, p = parse_key(text, pos)
            if not key then return nil, p end
            frame.key, pos = key, p
          end
          break
        elseif d == (frame.array and 93 or 125) then
          pos = pos + 1
          value = frame.t
          stack[depth] = nil
          depth = depth - 1
        else
          return nil, "expected ',' or a closing bracket"
        end
      end
    end
  end
end

return encode, decode
