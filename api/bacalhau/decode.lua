-- A typed decoder for Bacalhau's JSON documents, matching member names
-- without regard to case at every level as Go's decoder does, into tables
-- with one canonical spelling per field. A schema is data (the field kinds
-- below); api/bacalhau/payload.lua holds the schemas of the documents.
-- Problems come back as {status = 400, field = <path as the client spelt
-- it>, message = <a sentence naming the field>}.
local json = require("jobrt.json")
local suggest = require("jobrt.suggest")
local enums = require("api.bacalhau.enums")

local M = {}

local NULL = json.null

-- Each decoded object -> {Canonical = "the member name the client sent"}.
-- Weak keys: an entry lives as long as the decoded table it describes.
local SPELT = setmetatable({}, { __mode = "k" })

---------------------------------------------------------------------------
-- Field kinds. Each is {kind = ..., ...}; `check(v) -> nil | reason` adds a
-- test on a value of the right type.

function M.string(opts) return { kind = "string", check = opts and opts.check } end
function M.int(opts) return { kind = "int", min = opts and opts.min } end
function M.number(opts) return { kind = "number", min = opts and opts.min } end
function M.bool() return { kind = "bool" } end
function M.enum(name) return { kind = "enum", enum = name } end
function M.list(item) return { kind = "list", item = item } end
function M.map(item) return { kind = "map", item = item } end
function M.any_object() return { kind = "any_object" } end
-- A bool, or the strings "any" (false) and "all" (true), for
-- Deal.TargetingMode.
function M.targeting() return { kind = "targeting" } end

--- decode.object(fields, opts): fields is a list of {Name, kind[, required
-- = true][, aliases = {...}][, on = function(value, ctx)]} in decoding
-- order (`on` runs once the field is decoded, e.g. APIVersion fixing how
-- the enum ints that follow are numbered); opts.after(out, ctx, path) runs
-- once every field is decoded.
function M.object(fields, opts)
  local o = { kind = "object", fields = fields, index = {}, names = {}, after = opts and opts.after }
  for _, f in ipairs(fields) do
    o.index[f[1]:lower()] = f
    o.names[#o.names + 1] = f[1]
    for _, a in ipairs(f.aliases or {}) do
      o.index[a:lower()] = f
      o.names[#o.names + 1] = a
    end
  end
  return o
end

---------------------------------------------------------------------------

local function problem(path, fmt, ...)
  error({ bacalhau_problem = true, status = 400, field = path ~= "" and path or nil,
          message = string.format(fmt, ...) }, 0)
end

-- "the payload" for the root, else the field's path.
local function named(path)
  return path == "" and "the document" or path
end

local function describe(v)
  if type(v) == "table" then return json.is_array(v) and "a list" or "an object" end
  if math.type(v) == "float" then return "a number with a fraction" end
  if type(v) == "number" then return "a number" end
  if type(v) == "string" then return "a string" end
  return "a " .. type(v)
end

local function is_object(v)
  return type(v) == "table" and v ~= NULL and not json.is_array(v)
end

local function is_list(v)
  if type(v) ~= "table" or v == NULL then return false end
  if json.is_array(v) then return true end
  -- an empty table from a decoder that does not mark arrays
  return next(v) == nil and getmetatable(v) == nil
end

local function join(path, key)
  if path == "" then return key end
  if key:find("^[%w_]+$") then return path .. "." .. key end
  return path .. string.format("[%q]", key)
end

local decode_value

local function wrong(path, v, expected)
  problem(path, "%s must be %s, not %s", named(path), expected, describe(v))
end

local function decode_object(v, spec, ctx, path)
  if not is_object(v) then wrong(path, v, "an object") end
  -- Which member is which field, in a stable order so that the first
  -- problem reported does not depend on hashing.
  local keys = {}
  for k in pairs(v) do
    if type(k) ~= "string" then wrong(path, v, "an object") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local given, spelt = {}, {}
  for _, k in ipairs(keys) do
    local f = spec.index[k:lower()]
    if not f then
      local near = suggest.closest(k, spec.names)
      problem(join(path, k), "%s is not a field of %s%s", join(path, k), named(path),
        near and string.format(' (did you mean "%s"?)', near) or "")
    end
    if given[f] then
      problem(join(path, k), "%s and %s are the same field (names match in any case): "
        .. "send it once", join(path, given[f]), join(path, k))
    end
    given[f], spelt[f[1]] = k, k
  end
  local out = json.object({})
  for _, f in ipairs(spec.fields) do
    local k = given[f]
    local x = k and v[k]
    if x == nil or x == NULL then
      if f.required then problem(join(path, k or f[1]), "%s is missing", join(path, k or f[1])) end
    else
      out[f[1]] = decode_value(x, f[2], ctx, join(path, k))
      if f.on then f.on(out[f[1]], ctx) end
    end
  end
  SPELT[out] = spelt
  if spec.after then spec.after(out, ctx, path) end
  return out
end

local DECODE = {}

function DECODE.string(v, spec, _, path)
  if type(v) ~= "string" then wrong(path, v, "a string") end
  if spec.check then
    local _, why = spec.check(v)
    if why then problem(path, "%s %q %s", path, v, why) end
  end
  return v
end

function DECODE.int(v, spec, _, path)
  if math.type(v) ~= "integer" then wrong(path, v, "a whole number") end
  if spec.min and v < spec.min then problem(path, "%s must be at least %d, not %d", path, spec.min, v) end
  return v
end

function DECODE.number(v, spec, _, path)
  if type(v) ~= "number" then wrong(path, v, "a number") end
  if spec.min and v < spec.min then problem(path, "%s must not be less than %s", path, spec.min) end
  return v
end

function DECODE.bool(v, _, _, path)
  if type(v) ~= "boolean" then wrong(path, v, "true or false") end
  return v
end

function DECODE.targeting(v, _, _, path)
  if type(v) == "boolean" then return v end
  if type(v) == "string" then
    local s = v:match("^%s*(.-)%s*$"):lower()
    if s == "any" then return false end
    if s == "all" then return true end
  end
  problem(path, '%s must be false ("any": run on one matching node) or true ("all"), not %s',
    path, type(v) == "string" and string.format("%q", v) or describe(v))
end

function DECODE.enum(v, spec, ctx, path)
  local id, why = enums.parse(spec.enum, v, ctx.generation)
  if not id then problem(path, "%s %s", path, why) end
  return id
end

function DECODE.list(v, spec, ctx, path)
  if not is_list(v) then wrong(path, v, "a list") end
  local out = json.array({})
  for i = 1, #v do
    local x = v[i]
    local at = path .. "[" .. (i - 1) .. "]"
    if x == NULL then
      -- Go keeps a null element as the zero value: nothing to run on.
      problem(at, "%s is null", at)
    end
    out[i] = decode_value(x, spec.item, ctx, at)
  end
  return out
end

function DECODE.map(v, spec, ctx, path)
  if not is_object(v) then wrong(path, v, "an object") end
  local out = json.object({})
  for k, x in pairs(v) do
    if type(k) ~= "string" then wrong(path, v, "an object") end
    if x ~= NULL then out[k] = decode_value(x, spec.item, ctx, join(path, k)) end
  end
  return out
end

function DECODE.any_object(v, _, _, path)
  if not is_object(v) then wrong(path, v, "an object") end
  return v
end

DECODE.object = decode_object

function decode_value(v, spec, ctx, path)
  return DECODE[spec.kind](v, spec, ctx, path)
end

--- decode.spelt(t, name) -> the member name the client sent for field
-- name of the decoded object t (name itself for a table not decoded here,
-- e.g. one read back from the store)
function M.spelt(t, name)
  local s = SPELT[t]
  return s and s[name] or name
end

--- decode.run(value, schema[, generation]) -> table | nil, err.
-- generation ("v1.0", "v1.1") numbers enum ints until a field's `on` hook
-- sets ctx.generation (JobCreatePayload's APIVersion does).
function M.run(value, schema, generation)
  local ctx = { generation = generation }
  local ok, out = pcall(decode_value, value, schema, ctx, "")
  if ok then return out end
  if type(out) == "table" and out.bacalhau_problem then
    out.bacalhau_problem = nil
    return nil, out
  end
  error(out, 0)
end

return M
