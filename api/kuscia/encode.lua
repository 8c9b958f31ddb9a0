-- Answers as Kuscia writes them, from the message tables of
-- api/kuscia/proto.lua, fields in declaration order. Two encodings:
-- proto(): the gateway's proto JSON (snake_case names, every field with
-- its default, unset messages as null, 64-bit integers as strings, enums
-- by name); go(): Go's encoding/json on the generated structs, which the
-- watch stream uses (zero values left out, enums and all integers as
-- numbers, <, > and & escaped as Go escapes them).
local json = require("jobrt.json")
local proto = require("api.kuscia.proto")

local M = {}

local NULL = json.null

local ENUM_NAMES = {}
for enum, values in pairs(proto.ENUMS) do
  local names = {}
  for name, n in pairs(values) do names[n] = name end
  ENUM_NAMES[enum] = names
end

local function number(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n ~= n or n == math.huge or n == -math.huge then return "0" end
  if n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then return tostring(math.tointeger(n)) end
  return string.format("%.9g", n)
end

local sorted_keys = require("jobrt.tables").sorted_keys

local function is_zero(field, v)
  if v == nil or v == NULL then return true end
  if field.repeated or field.kind == "map" then return next(v) == nil end
  if field.kind == "message" then return false end
  if field.kind == "string" then return v == "" end
  if field.kind == "bool" then return v == false end
  return v == 0
end

local encode_message

local function scalar(field, v, go, out)
  local kind = field.kind
  if kind == "string" then
    out[#out + 1] = json.encode(v or "")
  elseif kind == "bool" then
    out[#out + 1] = v and "true" or "false"
  elseif kind == "int64" or kind == "uint64" then
    out[#out + 1] = go and number(v or 0) or ('"' .. number(v or 0) .. '"')
  elseif kind == "enum" then
    local n = v or 0
    local name = ENUM_NAMES[field.enum][n]
    out[#out + 1] = (go or not name) and number(n) or ('"' .. name .. '"')
  elseif kind == "message" then
    if v == nil or v == NULL then
      out[#out + 1] = "null"
    else
      encode_message(field.msg, v, go, out)
    end
  elseif kind == "any" then
    out[#out + 1] = json.encode(v)
  else -- int32, float
    out[#out + 1] = number(v or 0)
  end
end

local function value(field, v, go, out)
  if field.repeated then
    out[#out + 1] = "["
    for i, x in ipairs(v or {}) do
      if i > 1 then out[#out + 1] = "," end
      scalar(field, x, go, out)
    end
    out[#out + 1] = "]"
  elseif field.kind == "map" then
    out[#out + 1] = "{"
    for i, k in ipairs(sorted_keys(v or {})) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = json.encode(k) .. ":" .. json.encode(v[k])
    end
    out[#out + 1] = "}"
  else
    scalar(field, v, go, out)
  end
end

function encode_message(name, msg, go, out)
  out[#out + 1] = "{"
  local first = true
  for _, field in ipairs(proto.message(name)) do
    local v = msg[field.name]
    if not (go and is_zero(field, v)) then
      out[#out + 1] = (first and '"' or ',"') .. field.name .. '":'
      first = false
      value(field, v, go, out)
    end
  end
  out[#out + 1] = "}"
end

--- encode.proto(message_name, msg) -> JSON text, every field present.
function M.proto(name, msg)
  local out = {}
  encode_message(name, msg, false, out)
  return table.concat(out)
end

local GO_ESCAPES = { ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026",
                     ["\226\128\168"] = "\\u2028", ["\226\128\169"] = "\\u2029" }

--- encode.go(message_name, msg) -> JSON text, zero values left out.
function M.go(name, msg)
  local out = {}
  encode_message(name, msg, true, out)
  return (table.concat(out):gsub("[<>&]", GO_ESCAPES):gsub("\226\128[\168\169]", GO_ESCAPES))
end

return M
