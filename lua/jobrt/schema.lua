-- Option schemas: the options a plugin or surface module declares it takes
-- (`schema = {name = field}`), checked the way jobrt.config checks the
-- deployment file: every problem reported with its key and line, unknown
-- keys with a suggestion, defaults filled in. Also the reporting pieces
-- jobrt.config shares (Check, suggest, describe).
--
-- A field: {type =, default =, required = true, one_of = {...}, min =, max =,
-- positive = true (more than 0), of = field (list elements, map values),
-- fields = schema (record),
-- allow_false = true (false is a value of its own), secret = true (its
-- value is never shown in a message), pattern = a Lua pattern
-- a string must match, with pattern_text saying it in words, description =}. Types:
-- string, integer, number, boolean, duration, bytes, cpu (units as
-- jobrt.units reads them; normalised to seconds, bytes, millicores), list,
-- map, record, plugin (the name of a plugin of the deployment), any.
local units = require("jobrt.units")
local yaml = require("jobrt.yaml")

local M = {}

local NULL = yaml.null

local function is_null(v) return v == nil or v == NULL end
M.is_null = is_null

-- YAML mappings have string keys and sequences 1..n; an empty table is both.
local function is_map(v)
  return type(v) == "table" and (next(v) == nil or type(next(v)) == "string")
end
M.is_map = is_map

local function is_seq(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end
M.is_seq = is_seq

function M.describe(v)
  if v == nil then return "nothing" end
  if v == NULL then return "null" end
  if type(v) == "table" then
    if next(v) == nil then return "an empty table" end
    return is_seq(v) and "a list" or "a mapping"
  end
  if type(v) == "string" then return string.format("a string (%q)", v) end
  if type(v) == "number" then return "a number (" .. tostring(v) .. ")" end
  return "a " .. type(v) .. " (" .. tostring(v) .. ")"
end

-- The value itself where it is short: `expected a number, got "abc"`.
local function shown(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return M.describe(v)
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return out
end
M.deep_copy = deep_copy

-- "node" + "memory" -> "node.memory"; "listen" + 2 -> "listen[2]".
function M.join(path, k)
  if type(k) == "number" then return path .. "[" .. k .. "]" end
  if not k:find("^[%w_%-]+$") then return path .. string.format("[%q]", k) end
  if path == "" then return k end
  return path .. "." .. k
end
local join = M.join

-- The closest of names to word, if close enough to be a typo (one copy of
-- the did-you-mean rule, in jobrt.suggest).
M.suggest = require("jobrt.suggest").closest
local suggest = M.suggest

M.sorted_keys = require("jobrt.tables").sorted_keys
local sorted_keys = M.sorted_keys

---------------------------------------------------------------------------
-- One validation run: where problems go and where lines come from.

local Check = {}
Check.__index = Check

-- new_check(file, lines): lines as jobrt.yaml returns them (or {}).
function M.new_check(file, lines)
  return setmetatable({ file = file, lines = lines or {}, errors = {}, warnings = {} }, Check)
end

function Check:add(key, line, fmt, ...)
  self.errors[#self.errors + 1] = {
    file = self.file, line = line, key = key,
    message = select("#", ...) > 0 and string.format(fmt, ...) or fmt,
  }
end

function Check:warn(key, line, fmt, ...)
  self.warnings[#self.warnings + 1] = {
    file = self.file, line = line, key = key, warning = true,
    message = select("#", ...) > 0 and string.format(fmt, ...) or fmt,
  }
end

-- The line of t[k] (its key, or its element), else of t, else fallback.
function Check:line(t, k, fallback)
  local info = type(t) == "table" and self.lines[t]
  if not info then return fallback end
  return info.keys[k] or info.line or fallback
end

-- Keys of a mapping in the order they appear in the file.
function Check:keys(t)
  local keys = sorted_keys(t)
  local info = self.lines[t]
  if info then
    table.sort(keys, function(a, b)
      local la, lb = info.keys[a] or 0, info.keys[b] or 0
      if la ~= lb then return la < lb end
      return tostring(a) < tostring(b)
    end)
  end
  return keys
end

function Check:unknown(path, k, line, names)
  local guess = suggest(k, names)
  if guess then
    self:add(join(path, k), line, 'unknown key (did you mean "%s"?)', guess)
  elseif #names == 0 then
    self:add(join(path, k), line, "unknown key (this takes no options)")
  else
    table.sort(names)
    self:add(join(path, k), line, "unknown key (expected one of: %s)", table.concat(names, ", "))
  end
end

function Check:type_error(path, line, expected, v)
  self:add(path, line, "expected %s, got %s", expected, M.describe(v))
end

-- Checks that v is a mapping; says so at line otherwise.
function Check:mapping(path, line, v, what)
  if is_map(v) then return true end
  self:type_error(path, line, what or "a mapping", v)
  return false
end

---------------------------------------------------------------------------
-- Fields

local TYPES = {}

local function expected(c, path, line, what, v)
  c:add(path, line, "expected %s, got %s", what, shown(v))
  return false
end

-- A secret's value never appears in a message (jobrt check's output).
local function redact(c, before, v)
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" or v == "" then return end
  local plain = v:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  for i = before + 1, #c.errors do
    c.errors[i].message = c.errors[i].message:gsub(plain, "(a secret, not shown)")
  end
end

local function check_field(c, field, v, path, line)
  if v == false and field.allow_false then return true, false end
  if field.secret then
    local before = #c.errors
    local ok, value = TYPES[field.type](c, field, v, path, line)
    redact(c, before, v)
    return ok, value
  end
  local ok, value = TYPES[field.type](c, field, v, path, line)
  if not ok then return false end
  if field.one_of then
    for _, allowed in ipairs(field.one_of) do
      if value == allowed then return true, value end
    end
    local names = {}
    for i, allowed in ipairs(field.one_of) do names[i] = tostring(allowed) end
    local guess = type(value) == "string" and suggest(value, names)
    if guess then
      c:add(path, line, 'unknown value %s (did you mean "%s"?)', shown(value), guess)
    else
      c:add(path, line, "expected one of %s, got %s", table.concat(names, ", "), shown(value))
    end
    return false
  end
  return true, value
end

local function bounded(c, field, n, path, line)
  if field.positive and n <= 0 then c:add(path, line, "must be more than 0") return false end
  if field.min and n < field.min then c:add(path, line, "must be at least %s", tostring(field.min)) return false end
  if field.max and n > field.max then c:add(path, line, "must be at most %s", tostring(field.max)) return false end
  return true, n
end

function TYPES.any(_, _, v) return true, v end

function TYPES.string(c, field, v, path, line)
  if type(v) ~= "string" then return expected(c, path, line, "a string", v) end
  if v == "" and not field.empty then c:add(path, line, "must not be empty") return false end
  if field.pattern and not v:find(field.pattern) then
    c:add(path, line, "%s, got %s", field.pattern_text or ("must match " .. field.pattern), shown(v))
    return false
  end
  return true, v
end

function TYPES.boolean(c, _, v, path, line)
  if type(v) ~= "boolean" then return expected(c, path, line, "true or false", v) end
  return true, v
end

function TYPES.number(c, field, v, path, line)
  if type(v) ~= "number" then return expected(c, path, line, "a number", v) end
  return bounded(c, field, v, path, line)
end

function TYPES.integer(c, field, v, path, line)
  local n = type(v) == "number" and math.tointeger(v)
  if not n then return expected(c, path, line, "a whole number", v) end
  return bounded(c, field, n, path, line)
end

local function unit_type(parse)
  return function(c, field, v, path, line)
    local n, err = parse(v)
    if not n then c:add(path, line, "%s", err) return false end
    return bounded(c, field, n, path, line)
  end
end
TYPES.duration = unit_type(units.duration)
TYPES.bytes = unit_type(units.bytes)
TYPES.cpu = unit_type(units.cpu)

function TYPES.list(c, field, v, path, line)
  if not is_seq(v) then return expected(c, path, line, "a list", v) end
  local out, ok = {}, true
  local of = field.of or { type = "any" }
  for i, item in ipairs(v) do
    local good, x = check_field(c, of, item, join(path, i), c:line(v, i, line))
    if good then out[#out + 1] = x else ok = false end
  end
  return ok, out
end

function TYPES.map(c, field, v, path, line)
  if not is_map(v) then return expected(c, path, line, "a mapping", v) end
  local out, ok = {}, true
  local of = field.of or { type = "any" }
  for _, k in ipairs(c:keys(v)) do
    local good, x = check_field(c, of, v[k], join(path, k), c:line(v, k, line))
    if good then out[k] = x else ok = false end
  end
  return ok, out
end

-- A plugin's name: c.plugin_ref(name, path, line) (set by jobrt.config)
-- says whether the deployment has it.
function TYPES.plugin(c, field, v, path, line)
  local ok, name = TYPES.string(c, field, v, path, line)
  if not ok then return false end
  if c.plugin_ref and not c.plugin_ref(name, path, line) then return false end
  return true, name
end

-- check(c, field, v, path, line) -> ok, value: one value against one field
-- (jobrt.config checks its unit-valued settings with it).
M.check = check_field

function TYPES.record(c, field, v, path, line)
  local before = #c.errors
  local out = M.record(c, field.fields or {}, v, path, line)
  return #c.errors == before, out
end

-- record(c, schema, v, path, line[, skip]) -> v checked against schema,
-- with defaults for what it does not give. skip: keys taken as they are.
function M.record(c, schema, v, path, line, skip)
  local out = {}
  for name, field in pairs(schema) do out[name] = deep_copy(field.default) end
  if is_null(v) then v = {} end
  if not is_map(v) then
    expected(c, path, line, "a mapping", v)
    return out
  end
  local names = sorted_keys(schema)
  for _, k in ipairs(c:keys(v)) do
    local field, p, l = schema[k], join(path, k), c:line(v, k, line)
    if skip and skip[k] then
      out[k] = v[k]
    elseif not field then
      c:unknown(path, k, l, names)
    elseif not is_null(v[k]) then
      local ok, value = check_field(c, field, v[k], p, l)
      if ok then out[k] = value end
    end
  end
  for _, name in ipairs(names) do
    if schema[name].required and is_null(v[name]) then
      c:add(path, line, 'missing "%s"%s', name,
        schema[name].description and (" (" .. schema[name].description .. ")") or "")
    end
  end
  return out
end

-- declared(schema) -> true | nil, err: a module's schema is itself well formed.
function M.declared(schema, path)
  path = path or "schema"
  if not is_map(schema) then return nil, path .. " must be a table of fields" end
  for name, field in pairs(schema) do
    local p = join(path, name)
    if type(name) ~= "string" or type(field) ~= "table" then
      return nil, p .. " must be a field table ({type = ...})"
    end
    if not TYPES[field.type] then
      return nil, string.format("%s: unknown type %s (known: %s)", p, tostring(field.type),
        table.concat(sorted_keys(TYPES), ", "))
    end
    if field.one_of ~= nil and not is_seq(field.one_of) then return nil, p .. ".one_of must be a list" end
    if field.of ~= nil then
      local ok, err = M.declared({ of = field.of }, p)
      if not ok then return nil, err end
    end
    if field.fields ~= nil then
      local ok, err = M.declared(field.fields, p)
      if not ok then return nil, err end
    end
  end
  return true
end

-- apply(schema, options, label) -> complete options | nil, "label: key:
-- message; ...": for code that has no file to point at (a plugin loaded
-- by name at run time).
function M.apply(schema, options, label)
  local ok, err = M.declared(schema or {})
  if not ok then return nil, label .. ": " .. err end
  local c = M.new_check(label, {})
  local out = M.record(c, schema or {}, options, "", nil)
  if #c.errors > 0 then
    local parts = {}
    for _, e in ipairs(c.errors) do
      parts[#parts + 1] = (e.key ~= "" and (e.key .. ": ") or "") .. e.message
    end
    return nil, label .. ": " .. table.concat(parts, "; ")
  end
  return out
end

return M
