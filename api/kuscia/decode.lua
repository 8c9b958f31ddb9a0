-- Requests decoded as Kuscia's gateway decodes them (the proto JSON
-- mapping with unknown fields discarded): snake_case and lowerCamelCase
-- names, 64- and 32-bit integers as numbers or strings within their range,
-- enums by name or number, null as the field's default. Every field comes
-- back filled in with its proto default; message fields stay nil when
-- unset. The watch request is read as Go's encoding/json reads it instead.
-- Failures: nil, {code = 11101 (not JSON) | 11100 (a bad field), message}.
local json = require("jobrt.json")
local proto = require("api.kuscia.proto")

local M = {}

local NULL = json.null

M.NOT_JSON, M.INVALID = 11101, 11100

local INT_RANGE = {
  int32 = { -2147483648, 2147483647 },
  int64 = { math.mininteger, math.maxinteger },
  uint64 = { 0, math.maxinteger },
}

local function problem(code, fmt, ...)
  error({ kuscia_problem = true, code = code, message = string.format(fmt, ...) }, 0)
end

local function join(path, key)
  if type(key) == "number" then return path .. "[" .. key .. "]" end
  if path == "" then return key end
  return path .. "." .. key
end

-- A value in a message, short enough for an error message.
local function shown(v)
  if v == NULL then return "null" end
  if type(v) == "string" then
    if #v > 40 then v = v:sub(1, 37) .. "..." end
    return string.format("%q", v):gsub("\\\n", "\\n")
  end
  if type(v) == "table" then return json.is_array(v) and "a list" or "an object" end
  return tostring(v)
end

local function is_object(v)
  return type(v) == "table" and v ~= NULL and not json.is_array(v)
end

local function is_array(v)
  return type(v) == "table" and v ~= NULL and json.is_array(v)
end

local function invalid(field, path, v, expected)
  problem(M.INVALID, "invalid value for %s field %s: %s (expected %s)", field.repeated and ("repeated " .. field.kind)
    or field.kind, path, shown(v), expected)
end

-- An integer from a JSON number or a string holding one (the proto JSON
-- mapping allows both for every integer type), within kind's range.
local function integer(field, path, v)
  local range = INT_RANGE[field.kind] or INT_RANGE.int32
  local n = v
  if type(v) == "string" then
    if v:find("^-?%d+$") then
      n = math.tointeger(tonumber(v))
    elseif v:find("^-?%d*%.?%d+[eE][-+]?%d+$") or v:find("^-?%d+%.%d*$") or v:find("^-?%d*%.%d+$") then
      n = tonumber(v)
    else
      n = nil
    end
  end
  if type(n) == "number" and math.type(n) == "float" and n == math.floor(n) and n > -2 ^ 63 and n < 2 ^ 63 then
    n = math.tointeger(n)
  end
  if math.type(n) ~= "integer" or n < range[1] or n > range[2] then
    invalid(field, path, v, string.format("a whole number in [%d, %d], as a number or a string",
      range[1], range[2]))
  end
  return n
end

local decode_message

local SCALAR = {}

function SCALAR.string(field, path, v)
  if type(v) ~= "string" then invalid(field, path, v, "a string") end
  if not utf8.len(v) then problem(M.INVALID, "invalid UTF-8 in string field %s", path) end
  return v
end

function SCALAR.bool(field, path, v)
  if type(v) ~= "boolean" then invalid(field, path, v, "true or false") end
  return v
end

SCALAR.int32, SCALAR.int64, SCALAR.uint64 = integer, integer, integer

local FLOAT_WORDS = { NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge }

function SCALAR.float(field, path, v)
  local n = v
  if type(v) == "string" then n = FLOAT_WORDS[v] or tonumber(v) end
  if type(n) ~= "number" then invalid(field, path, v, "a number") end
  return n
end

function SCALAR.enum(field, path, v)
  if type(v) == "string" then
    -- Kuscia's gateway discards enum names it does not know: the default.
    return proto.ENUMS[field.enum][v] or 0
  end
  return integer({ kind = "int32" }, path, v) -- an enum number outside the names is kept, as proto3 keeps it
end

function SCALAR.message(field, path, v)
  return decode_message(field.msg, v, path)
end

function SCALAR.any(_, _, v)
  return v
end

local function default(field)
  if field.repeated then return json.array({}) end
  if field.kind == "map" then return json.object({}) end
  if field.kind == "string" then return "" end
  if field.kind == "bool" then return false end
  if field.kind == "message" then return nil end
  return 0
end

local function decode_field(field, path, v)
  if field.repeated then
    if not is_array(v) then invalid(field, path, v, "a list") end
    local out = json.array({})
    for i, x in ipairs(v) do
      local p = join(path, i - 1)
      if x == NULL then problem(M.INVALID, "invalid value for %s field %s: null in a list", field.kind, p) end
      out[i] = SCALAR[field.kind](field, p, x)
    end
    return out
  end
  if field.kind == "map" then
    if not is_object(v) then invalid(field, path, v, "an object of strings") end
    local out = json.object({})
    for k, x in pairs(v) do
      local p = join(path, k)
      if type(x) ~= "string" then invalid(field, p, x, "a string (map values are strings)") end
      if not utf8.len(k) or not utf8.len(x) then problem(M.INVALID, "invalid UTF-8 in map field %s", path) end
      out[k] = x
    end
    return out
  end
  return SCALAR[field.kind](field, path, v)
end

function decode_message(name, v, path)
  if not is_object(v) then
    problem(M.INVALID, "%s must be a JSON object, not %s", path == "" and "the request" or path, shown(v))
  end
  local fields = proto.message(name)
  -- Sorted, so that the first problem reported does not depend on hashing.
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local out, seen = {}, {}
  for _, k in ipairs(keys) do
    local field = fields.by_name[k]
    if field then -- unknown fields are ignored, as the gateway ignores them
      if seen[field] then
        problem(M.INVALID, 'field %s is given twice (as "%s" and "%s")', join(path, field.name), seen[field], k)
      end
      seen[field] = k
      if v[k] ~= NULL then out[field.name] = decode_field(field, join(path, k), v[k]) end
    end
  end
  for _, field in ipairs(fields) do
    if out[field.name] == nil then out[field.name] = default(field) end
  end
  return out
end

-- The body as JSON: an empty body is an empty message.
local function parse(body)
  if body == nil or body:find("^%s*$") then return json.object({}) end
  local doc, err = json.decode(body)
  if doc == nil then return nil, { code = M.NOT_JSON, message = "the request body is not JSON: " .. tostring(err) } end
  if not is_object(doc) then
    return nil, { code = M.NOT_JSON, message = "the request body must be a JSON object, not " .. shown(doc) }
  end
  return doc
end

--- decode.request(message_name, body) -> message | nil, {code, message}
function M.request(name, body)
  local doc, err = parse(body)
  if not doc then return nil, err end
  local ok, out = pcall(decode_message, name, doc, "")
  if ok then return out end
  if type(out) == "table" and out.kuscia_problem then return nil, { code = out.code, message = out.message } end
  error(out, 0)
end

--- decode.watch(body) -> {timeout_seconds = n} | nil, message. Go's
-- encoding/json on the request struct: member names matched without
-- regard to case, only the snake_case tags, unknown members ignored, a
-- number where a number belongs.
function M.watch(body)
  local doc, err = parse(body)
  if not doc then return nil, err.message end
  local out = { timeout_seconds = 0 }
  for k, v in pairs(doc) do
    local key = type(k) == "string" and k:lower() or nil
    if key == "timeout_seconds" and v ~= NULL then
      if math.type(v) ~= "integer" then
        return nil, "timeout_seconds: cannot unmarshal " .. shown(v) .. " into an int64"
      end
      out.timeout_seconds = v
    elseif key == "header" and v ~= NULL then
      if not is_object(v) then return nil, "header: cannot unmarshal " .. shown(v) .. " into a RequestHeader" end
      for hk, hv in pairs(v) do
        if hk:lower() == "custom_headers" and hv ~= NULL then
          if not is_object(hv) then return nil, "header.custom_headers: expected an object of strings" end
          for _, x in pairs(hv) do
            if type(x) ~= "string" then return nil, "header.custom_headers: expected an object of strings" end
          end
        end
      end
    end
  end
  return out
end

return M
