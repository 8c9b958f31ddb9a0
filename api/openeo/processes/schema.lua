-- The subset of JSON Schema that openEO process parameters use: type (with
-- openEO's "null"), anyOf (also written as a bare list), enum, const,
-- minimum/maximum (plus openEO's minimumExclusive/maximumExclusive), items,
-- minItems/maxItems, and the subtypes/formats that matter here (date,
-- date-time, time, process-graph). Used by the validator before evaluation
-- and by the evaluator on computed arguments.
local util = require("api.openeo.processes.util")

local M = {}

local NULL = util.null

--- type_of(v) -> the JSON type name of a runtime value ("function" for a
-- callback that the evaluator built from a child process graph).
function M.type_of(v)
  local t = type(v)
  if v == nil or v == NULL then return "null" end
  if t == "number" or t == "string" or t == "boolean" or t == "function" then return t end
  if t == "table" then return util.is_array(v) and "array" or "object" end
  return t
end

-- Schemas are either a table with "type"... or a list meaning anyOf.
local function alternatives(schema)
  if schema[1] ~= nil then return schema end
  if schema.anyOf then return schema.anyOf end
  if schema.oneOf then return schema.oneOf end
  return nil
end
M.alternatives = alternatives

local function type_list(schema)
  local t = schema.type
  if t == nil then return nil end
  if type(t) == "string" then return { t } end
  return t
end

--- is_callback_schema(schema) -> the (first) process-graph alternative, or nil.
function M.callback_schema(schema)
  if type(schema) ~= "table" then return nil end
  local alts = alternatives(schema)
  if alts then
    for _, s in ipairs(alts) do
      local cb = M.callback_schema(s)
      if cb then return cb end
    end
    return nil
  end
  if schema.subtype == "process-graph" then return schema end
  return nil
end

local function type_matches(name, v, tv)
  if name == tv then return true end
  if name == "integer" then return tv == "number" and util.is_integer(v) end
  if name == "any" then return true end
  return false
end

local function describe(tv)
  if tv == "function" then return "a child process" end
  return tv == "null" and "null" or ("a value of type " .. tv)
end

-- refs: optional function(v) -> kind for values that are references to be
-- resolved later ("node"/"parameter"/"callback"), or nil for plain values.
local check

local function check_format(v, schema)
  local sub = schema.subtype or schema.format
  if type(v) ~= "string" then return true end
  if sub == "date-time" or sub == "date" or sub == "time" then
    local t = util.parse_temporal(v)
    if not t or t.kind ~= sub then return false, string.format("%q is not a valid %s", v, sub) end
  end
  return true
end

check = function(v, schema, refs, depth)
  if type(schema) ~= "table" then return true end
  depth = depth or 0
  if depth > 64 then return true end
  local kind = refs and refs(v, schema)
  if kind then
    -- A reference is checked where its value is known; a child process only
    -- fits a parameter that accepts one.
    if kind == "callback" and not M.callback_schema(schema) then
      return false, "a child process is not allowed here"
    end
    return true
  end
  local alts = alternatives(schema)
  if alts then
    local first
    for _, s in ipairs(alts) do
      local ok, why = check(v, s, refs, depth + 1)
      if ok then return true end
      first = first or why
    end
    if #alts == 0 then return true end
    return false, first
  end
  local tv = M.type_of(v)
  local types = schema.type -- a name or a list of names
  if schema.subtype == "process-graph" then
    if tv ~= "function" then return false, "expected a child process, got " .. describe(tv) end
    return true
  end
  if types then
    local ok = false
    if type(types) == "string" then
      ok = type_matches(types, v, tv)
    else
      for _, name in ipairs(types) do
        if type_matches(name, v, tv) then ok = true break end
      end
    end
    if not ok then
      local names = type(types) == "string" and types or table.concat(types, " or ")
      return false, string.format("expected %s, got %s", names, describe(tv))
    end
  elseif tv == "function" then
    return false, "a child process is not allowed here"
  end
  if schema.const ~= nil and not (v == schema.const) then
    return false, "expected " .. tostring(schema.const)
  end
  if schema.enum and tv ~= "null" then
    local found = false
    for _, e in ipairs(schema.enum) do
      if e == v then found = true break end
    end
    if not found then
      local names = {}
      for i, e in ipairs(schema.enum) do names[i] = tostring(e) end
      return false, string.format("%s is not one of: %s", tostring(v), table.concat(names, ", "))
    end
  end
  if tv == "number" and v == v then
    local lo, hi = schema.minimum, schema.maximum
    local xlo = schema.minimumExclusive or schema.exclusiveMinimum
    local xhi = schema.maximumExclusive or schema.exclusiveMaximum
    if lo and v < lo then return false, string.format("must be >= %s", util.number_text(lo)) end
    if hi and v > hi then return false, string.format("must be <= %s", util.number_text(hi)) end
    if xlo and v <= xlo then return false, string.format("must be > %s", util.number_text(xlo)) end
    if xhi and v >= xhi then return false, string.format("must be < %s", util.number_text(xhi)) end
  end
  if tv == "string" then
    local ok, why = check_format(v, schema)
    if not ok then return false, why end
  end
  if tv == "array" then
    if schema.minItems and #v < schema.minItems then
      return false, string.format("needs at least %d elements", schema.minItems)
    end
    if schema.maxItems and #v > schema.maxItems then
      return false, string.format("allows at most %d elements", schema.maxItems)
    end
    if type(schema.items) == "table" and next(schema.items) ~= nil then
      for i = 1, #v do
        local ok, why = check(v[i], schema.items, refs, depth + 1)
        if not ok then return false, string.format("element %d: %s", i - 1, why) end
      end
    end
  end
  return true
end

--- check(value, schema[, refs]) -> true | false, reason
M.check = check

--- types(schema) -> set of JSON type names a schema admits, or nil for any.
function M.types(schema)
  if type(schema) ~= "table" then return nil end
  local alts = alternatives(schema)
  if alts then
    local set = {}
    for _, s in ipairs(alts) do
      local sub = M.types(s)
      if not sub then return nil end
      for k in pairs(sub) do set[k] = true end
    end
    return set
  end
  if schema.subtype == "process-graph" then return { ["function"] = true } end
  local list = type_list(schema)
  if not list then return nil end
  local set = {}
  for _, name in ipairs(list) do
    set[name] = true
    if name == "integer" then set.number = true end
  end
  return set
end

--- compatible(returns_schema, param_schema) -> false only when no value the
-- first schema describes could ever satisfy the second.
function M.compatible(produced, accepted)
  local a, b = M.types(produced), M.types(accepted)
  if not a or not b then return true end
  for k in pairs(a) do
    if b[k] or (k == "number" and b.integer) then return true end
  end
  return false
end

return M
