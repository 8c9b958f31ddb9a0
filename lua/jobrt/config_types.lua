-- The deployment file's value checkers (jobrt.config and its parts): each
-- f(c, v, path, line, spec) -> ok, normalised value, reporting what is wrong
-- through the Check c of jobrt.schema; records of fixed fields; `each`
-- checkers for list items (names from a fixed list, absolute paths).
local S = require("jobrt.schema")

local M = {}

local is_null, is_seq = S.is_null, S.is_seq
local describe, deep_copy, join = S.describe, S.deep_copy, S.join
local suggest, sorted_keys = S.suggest, S.sorted_keys

---------------------------------------------------------------------------
-- Value checkers: f(c, v, path, line, spec) -> ok, normalised value. They are
-- called only for non-null values; null means "the default".

local T = {}

function T.string(c, v, path, line)
  if type(v) ~= "string" then c:type_error(path, line, "a string", v) return false end
  if v == "" then c:add(path, line, "must not be empty") return false end
  return true, v
end

function T.boolean(c, v, path, line)
  if type(v) ~= "boolean" then c:type_error(path, line, "true or false", v) return false end
  return true, v
end

function T.count(c, v, path, line, spec)
  local n = type(v) == "number" and math.tointeger(v)
  if not n then c:type_error(path, line, "a whole number", v) return false end
  local min = spec.min or 0
  if n < 0 and min == 0 then c:add(path, line, "must not be negative") return false end
  if n < min then c:add(path, line, "must be at least %d", min) return false end
  return true, n
end

-- Sizes, CPU and durations read as the modules' option schemas read them.
local function unit_value(c, v, path, line, spec) return S.check(c, spec, v, path, line) end
T.bytes, T.cpu, T.duration = unit_value, unit_value, unit_value

function T.enum(c, v, path, line, spec)
  for _, allowed in ipairs(spec.values) do
    if v == allowed then return true, v end
  end
  local list = '"' .. table.concat(spec.values, '", "') .. '"'
  if type(v) == "string" then
    local guess = suggest(v, spec.values)
    if guess then
      c:add(path, line, 'unknown value "%s" (did you mean "%s"?)', v, guess)
      return false
    end
  end
  c:add(path, line, "expected one of %s, got %s", list, describe(v))
  return false
end

-- A list of strings; a single string is a list of one.
function T.strings(c, v, path, line, spec)
  if type(v) == "string" then v = { v } end
  if not is_seq(v) then c:type_error(path, line, "a list of strings", v) return false end
  local out, ok = {}, true
  for i, item in ipairs(v) do
    local p, l = join(path, i), c:line(v, i, line)
    local good, s = T.string(c, item, p, l)
    if good and spec.each then good, s = spec.each(c, s, p, l) end
    if good then out[#out + 1] = s else ok = false end
  end
  return ok, out
end

-- An `each` checker for names from a fixed list: "unknown role "x"" with
-- the closest name, or the list when none is close.
local function known(what, names)
  return function(c, s, path, line)
    for _, name in ipairs(names) do
      if s == name then return true, s end
    end
    local guess = suggest(s, names)
    c:add(path, line, 'unknown %s "%s" (%s)', what, s,
      guess and string.format('did you mean "%s"?', guess) or ("known: " .. table.concat(names, ", ")))
    return false
  end
end

local function absolute_path(c, s, path, line)
  if s:sub(1, 1) ~= "/" then
    c:add(path, line, 'must be an absolute path, got "%s"', s)
    return false
  end
  return true, s
end

local function module_name(c, s, path, line)
  for part in (s .. "."):gmatch("([^.]*)%.") do
    if not part:find("^[%a_][%w_]*$") then
      c:add(path, line, 'not a Lua module name: "%s" (expected e.g. "site.reports")', s)
      return false
    end
  end
  return true, s
end

-- A record: a mapping whose keys are fixed by fields {name = spec}. Returns
-- its defaults overlaid with the valid values found.
local function record(c, v, path, line, fields)
  local out = {}
  for name, spec in pairs(fields) do out[name] = deep_copy(spec.default) end
  if is_null(v) or not c:mapping(path, line, v) then return out end
  local names = sorted_keys(fields)
  for _, k in ipairs(c:keys(v)) do
    local spec, p, l = fields[k], join(path, k), c:line(v, k, line)
    if not spec then
      c:unknown(path, k, l, names)
    elseif not is_null(v[k]) then
      local ok, value = T[spec.type](c, v[k], p, l, spec)
      if ok then out[k] = value end
    end
  end
  return out
end

T.record = function(c, v, path, line, spec) return true, record(c, v, path, line, spec.fields) end

M.T = T
M.record = record
M.known = known
M.absolute_path = absolute_path
M.module_name = module_name

return M
