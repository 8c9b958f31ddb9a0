-- JSON for the runtime and the surfaces: lua-cjson's decoder, plus what
-- Debian's lua-cjson 2.1.0 lacks: integers that stay exact Lua integers,
-- "[]" and "{}" that survive a round trip, "/" left unescaped.
local cjson = require("cjson")

local M = {}

-- cjson 2.1.0 has no array_mt, empty_array_mt nor escape_forward_slash, and
-- prints every number with %.14g; so encoding is ours (below), and decoding
-- uses a private cjson instance so that no setting leaks to other users.
local decoder = cjson.new()
decoder.decode_invalid_numbers(false) -- no NaN, Infinity or hex: not JSON
local MAX_DEPTH = 1000
decoder.decode_max_depth(MAX_DEPTH)

local NULL = cjson.null
M.null = NULL

-- Inside the jobrt binary (and with the rock) the C codec of
-- runtime/lua/json.c encodes and decodes, and owns the marks, so that
-- tables from the C bindings and from here are marked alike. The Lua code
-- below serves plain lua5.4 without it.
local ok_c, jsonc = pcall(require, "jobrt.jsonc")
local array_mt = ok_c and jsonc.array_mt or { __name = "jobrt.json.array" }
local object_mt = ok_c and jsonc.object_mt or { __name = "jobrt.json.object" }

--- json.array(t) -> t, marked to encode as a JSON array ("[]" when empty).
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

--- json.object(t) -> t, marked to encode as a JSON object ("{}" when empty).
function M.object(t)
  return setmetatable(t or {}, object_mt)
end

--- json.is_array(t) -> whether t is marked as an array (decoded arrays are).
function M.is_array(t)
  local mt = getmetatable(t)
  return mt == array_mt or (type(mt) == "table" and rawget(mt, "__name") == array_mt.__name)
end

---------------------------------------------------------------------------
-- Decoding

-- Floats that hold a whole number exactly become integers, so that 5 (which
-- cjson reads as 5.0) is math.type "integer" and prints as "5".
local EXACT = 2 ^ 53

local function fix_number(v)
  if v == math.floor(v) and v > -EXACT and v < EXACT then return math.tointeger(v) end
  return v
end

-- cjson's result -> ours: numbers fixed, tables marked. An empty table is an
-- object here, because texts holding "[]" never come this way.
local function adopt(v)
  local tv = type(v)
  if tv == "number" then return fix_number(v) end
  if tv ~= "table" then return v end
  if v[1] ~= nil then
    for i = 1, #v do v[i] = adopt(v[i]) end
    return setmetatable(v, array_mt)
  end
  for k, x in pairs(v) do
    local tx = type(x)
    if tx == "table" or tx == "number" then v[k] = adopt(x) end
  end
  return setmetatable(v, object_mt)
end

local TOKEN_NAMES = {
  T_OBJ_BEGIN = "'{'", T_OBJ_END = "'}'", T_ARR_BEGIN = "'['", T_ARR_END = "']'",
  T_STRING = "a string", T_NUMBER = "a number", T_BOOLEAN = "a boolean",
  T_NULL = "null", T_COLON = "':'", T_COMMA = "','", T_END = "the end of the text",
  T_WHITESPACE = "whitespace", T_ERROR = "an error", T_UNKNOWN = "an unknown token",
}

-- "Expected X but found T_END at character 5" -> "at byte 5: expected X but
-- found the end of the text".
local function cjson_error(msg)
  msg = tostring(msg):gsub("T_[%u_]+", TOKEN_NAMES)
  local head, at = msg:match("^(.-) at character (%d+)$")
  if not head then return "invalid JSON: " .. msg end
  return string.format("invalid JSON at byte %s: %s%s", at, head:sub(1, 1):lower(), head:sub(2))
end

-- The exact decoder, for the texts cjson would get wrong: integers beyond
-- 2^53 (cjson reads them as doubles) and empty arrays (cjson gives an empty
-- table that would encode as "{}"). Same acceptance as cjson.
local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode_exact(s)
  local pos = 1

  local function fail(msg, at)
    error({ at = at or pos, msg = msg }, 0)
  end

  local function skip()
    pos = s:find("[^ \t\r\n]", pos) or #s + 1
  end

  local function hex4(at)
    local h = s:match("^%x%x%x%x", at)
    if not h then fail("invalid unicode escape code", at - 2) end
    return tonumber(h, 16)
  end

  local function str()
    local start, parts = pos, {}
    pos = pos + 1
    while true do
      local j = s:find('["\\]', pos)
      if not j then fail("unexpected end of string", start) end
      parts[#parts + 1] = s:sub(pos, j - 1)
      if s:byte(j) == 34 then pos = j + 1 break end
      local e = s:sub(j + 1, j + 1)
      if ESCAPES[e] then
        parts[#parts + 1] = ESCAPES[e]
        pos = j + 2
      elseif e == "u" then
        local cp = hex4(j + 2)
        pos = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          if s:sub(pos, pos + 1) ~= "\\u" then fail("invalid unicode escape code", j) end
          local low = hex4(pos + 2)
          if low < 0xDC00 or low > 0xDFFF then fail("invalid unicode escape code", j) end
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
          pos = pos + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          fail("invalid unicode escape code", j)
        end
        parts[#parts + 1] = utf8.char(cp)
      else
        fail("invalid escape code", j)
      end
    end
    return table.concat(parts)
  end

  local function number()
    local start, integer = pos, true
    local i = pos
    if s:byte(i) == 45 then i = i + 1 end -- "-"
    if s:byte(i) == 48 then -- "0"
      i = i + 1
    elseif s:find("^[1-9]", i) then
      i = s:find("[^%d]", i) or #s + 1
    else
      fail("invalid number", start)
    end
    if s:byte(i) == 46 then -- "."
      if not s:find("^%d", i + 1) then fail("invalid number", start) end
      i = s:find("[^%d]", i + 1) or #s + 1
      integer = false
    end
    if s:find("^[eE]", i) then
      local j = i + 1
      if s:find("^[-+]", j) then j = j + 1 end
      if not s:find("^%d", j) then fail("invalid number", start) end
      i = s:find("[^%d]", j) or #s + 1
      integer = false
    end
    pos = i
    local v = tonumber(s:sub(start, i - 1))
    if integer and math.type(v) == "integer" then return v end
    return fix_number(v)
  end

  local value

  -- Past an opening bracket: true when the container closes at once.
  local function opened(close)
    pos = pos + 1
    skip()
    if s:byte(pos) ~= close then return false end
    pos = pos + 1
    return true
  end

  -- Past an element: true after ",", false after the closing bracket.
  local function more(close, expected)
    skip()
    local c = s:byte(pos)
    if c ~= close and c ~= 44 then fail(expected) end
    pos = pos + 1
    return c == 44
  end

  local function array(depth)
    local out, n = setmetatable({}, array_mt), 0
    if opened(93) then return out end -- "]"
    repeat
      n = n + 1
      out[n] = value(depth)
    until not more(93, "expected ',' or ']'")
    return out
  end

  local function object(depth)
    local out = setmetatable({}, object_mt)
    if opened(125) then return out end -- "}"
    repeat
      skip()
      if s:byte(pos) ~= 34 then fail("expected a string key") end
      local k = str()
      skip()
      if s:byte(pos) ~= 58 then fail("expected ':'") end
      pos = pos + 1
      out[k] = value(depth)
    until not more(125, "expected ',' or '}'")
    return out
  end

  local LITERALS = { t = { "true", true }, f = { "false", false }, n = { "null", M.null } }

  function value(depth)
    skip()
    local c = s:sub(pos, pos)
    if c == "{" or c == "[" then
      if depth >= MAX_DEPTH then fail("too many nested arrays or objects") end
      return c == "{" and object(depth + 1) or array(depth + 1)
    elseif c == '"' then
      return str()
    elseif c == "-" or c:find("^%d") then
      return number()
    elseif LITERALS[c] then
      local word, v = LITERALS[c][1], LITERALS[c][2]
      if s:sub(pos, pos + #word - 1) ~= word then fail("invalid token") end
      pos = pos + #word
      return v
    elseif c == "" then
      fail("expected a value but found the end of the text")
    end
    fail("expected a value")
  end

  local ok, result = pcall(function()
    local v = value(0)
    skip()
    if pos <= #s then fail("expected the end of the text") end
    return v
  end)
  if ok then return result end
  if type(result) ~= "table" then return nil, "invalid JSON: " .. tostring(result) end
  return nil, string.format("invalid JSON at byte %d: %s", result.at, result.msg)
end

--- json.decode(text) -> value | nil, "invalid JSON at byte N: reason". Never
-- raises. Objects and arrays come back marked (json.object / json.array);
-- whole numbers are integers; null is json.null.
function M.decode(text)
  if type(text) ~= "string" then
    return nil, "invalid JSON: expected a string, got " .. type(text)
  end
  -- 16 digits can exceed 2^53; "[]" must stay an array. Both rare in the
  -- texts a server sees, so cjson does the common case.
  if text:find("%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d") or text:find("%[%s*%]") then
    return decode_exact(text)
  end
  local ok, v = pcall(decoder.decode, text)
  if not ok then return nil, cjson_error(v) end
  return adopt(v)
end

---------------------------------------------------------------------------
-- Encoding

local string_encoder = cjson.new().encode
local find, gsub, math_type = string.find, string.gsub, math.type

-- cjson escapes strings fastest; only its "\/" must be undone (every "\/"
-- in its output is an escaped "/": a real backslash comes out as "\\").
local function quote(s)
  local q = string_encoder(s)
  if find(q, "\\/", 1, true) then q = gsub(q, "\\/", "/") end
  return q
end

-- Object keys repeat from one document to the next: keep their quoted form.
local KEY_CACHE_MAX, KEY_MAX = 2048, 64
local key_cache, key_cache_size = {}, 0

local function quote_key(k)
  local q = key_cache[k]
  if q then return q end
  q = quote(k)
  if #k <= KEY_MAX then
    if key_cache_size >= KEY_CACHE_MAX then key_cache, key_cache_size = {}, 0 end
    key_cache[k] = q
    key_cache_size = key_cache_size + 1
  end
  return q
end

local function number_text(v)
  if math.type(v) == "integer" then return v .. "" end
  if v ~= v or v == math.huge or v == -math.huge then
    error("json.encode: cannot encode " .. tostring(v) .. " (NaN and infinity are not JSON)", 0)
  end
  -- The shortest of these that reads back as the same double.
  for digits = 14, 16 do
    local text = string.format("%." .. digits .. "g", v)
    if tonumber(text) == v then return text end
  end
  return string.format("%.17g", v)
end

-- How t encodes when it is not marked: "array" when its keys are 1..n (a
-- few holes are encoded as null, as cjson does), else "object".
local function shape(t)
  local n, max = 0, 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return "object" end
    n = n + 1
    if k > max then max = k end
  end
  if n == 0 then return "object" end
  if max > 10 and max > 2 * n then
    error("json.encode: excessively sparse array (" .. n .. " values up to index " .. max .. ")", 0)
  end
  return "array", max
end

-- One encoder per call, the output buffer and its length as upvalues.
local function encoder()
  local buf, n = {}, 0
  local value

  local function table_value(t, depth)
    if depth > MAX_DEPTH then
      error("json.encode: nested deeper than " .. MAX_DEPTH .. " (a cycle?)", 0)
    end
    local mt = getmetatable(t)
    local kind, len
    -- by name too: without the C codec here, the C binding (loaded later
    -- from the rock) marks its tables with the codec's own metatables
    local name = type(mt) == "table" and rawget(mt, "__name")
    if mt == array_mt or name == "jobrt.json.array" then
      kind, len = "array", #t
    elseif mt == object_mt or name == "jobrt.json.object" then
      kind = "object"
    else
      kind, len = shape(t)
    end
    if kind == "array" then
      if len == 0 then n = n + 1 buf[n] = "[]" return end
      n = n + 1 buf[n] = "["
      for i = 1, len do
        if i > 1 then n = n + 1 buf[n] = "," end
        value(t[i], depth)
      end
      n = n + 1 buf[n] = "]"
      return
    end
    local sep = "{"
    for k, v in pairs(t) do
      local tk = type(k)
      if tk == "number" then
        k = number_text(k)
      elseif tk ~= "string" then
        error("json.encode: cannot encode a " .. tk .. " key", 0)
      end
      buf[n + 1] = sep
      buf[n + 2] = quote_key(k)
      buf[n + 3] = ":"
      n = n + 3
      sep = ","
      value(v, depth)
    end
    n = n + 1
    buf[n] = sep == "{" and "{}" or "}"
  end

  function value(v, depth)
    local tv = type(v)
    n = n + 1
    if tv == "string" then
      local q = string_encoder(v)
      if find(q, "\\/", 1, true) then q = gsub(q, "\\/", "/") end
      buf[n] = q
    elseif tv == "number" then
      buf[n] = math_type(v) == "integer" and v .. "" or number_text(v)
    elseif tv == "table" then
      n = n - 1
      table_value(v, depth + 1)
    elseif tv == "boolean" then
      buf[n] = v and "true" or "false"
    elseif v == nil or v == NULL then
      buf[n] = "null"
    else
      error("json.encode: cannot encode a " .. tv, 0)
    end
  end

  return function(v)
    value(v, 0)
    return table.concat(buf, "", 1, n)
  end
end

--- json.encode(v) -> text. Raises only on programming errors: functions,
-- userdata, NaN or infinity, cycles, excessively sparse arrays. Inside the
-- jobrt binary the C encoder of runtime/lua/json.c does the same work;
-- the Lua walk above serves plain lua5.4 (policy authors' unit tests).
if ok_c then
  M.encode = jsonc.encode
  M.decode = jsonc.decode
else
  function M.encode(v)
    return encoder()(v)
  end
end

return M
