-- The core job model (DESIGN §3) as data: one table of fields with their
-- types per level (job, task, resources, network, inputs, outputs), the
-- size limits of `limits:`, and the strict check every submission passes
-- (jobrt.submit): unknown fields named with the closest known name, types,
-- limits named by their key. Paths count list indexes from 0.
local json = require("jobrt.json")
local units = require("jobrt.units")
local suggest = require("jobrt.suggest")

local M = {}

local NULL = json.null
local KiB, MiB = 1024, 1024 * 1024

---------------------------------------------------------------------------
-- Limits (`limits:` at the top of the deployment): sizes in bytes, counts
-- in entries. Every refusal names its key.

M.LIMITS = {
  title = { default = 256, unit = "bytes" },
  description = { default = 16 * KiB, unit = "bytes" },
  label_key = { default = 128, unit = "bytes" },
  label_value = { default = 1 * KiB, unit = "bytes" },
  labels = { default = 64, unit = "entries" },
  env = { default = 256, unit = "entries" },
  env_value = { default = 32 * KiB, unit = "bytes" },
  tasks = { default = 1000, unit = "entries" },
  inline_input = { default = 1 * MiB, unit = "bytes" },
  command = { default = 4096, unit = "entries" },
}

--- submit.limits(cfg_limits) -> {key = integer}: the deployment's limits
-- with the defaults for what it does not state. Sizes may be unit strings.
function M.limits(given)
  local out = {}
  for key, spec in pairs(M.LIMITS) do
    local v = type(given) == "table" and given[key] or nil
    if type(v) == "string" and spec.unit == "bytes" then v = units.bytes(v) end
    out[key] = math.tointeger(v) or spec.default
  end
  return out
end

---------------------------------------------------------------------------
-- The core job model, as data. A field is {type = ..., ...}:
--   string, integer, number, boolean, any, enum (values), command (a
--   string run by the shell, or a list of strings), list (item), map (item:
--   values of a string-keyed object), object (fields), readonly (set by
--   the runtime). Units ("500m", "64MiB", "30s") are a surface's to
--   translate: here cpu is millicores, memory and disk bytes, timeout seconds.
-- Options: required, min, limit (a key of M.LIMITS: bytes of a string,
-- entries of a list or map), key_limit, key_pattern, fixed (given at
-- submit only, never changed by an update).

local RO = { type = "readonly" }

local INPUT = {
  source = { type = "enum", required = true, values = { "inline", "path", "task-output", "jobrt", "url" } },
  target = { type = "string" },
  readonly = { type = "boolean" },
  data = { type = "string", limit = "inline_input" },
  path = { type = "string" },
  task = { type = "string" },
  file = { type = "string" },
  url = { type = "string" },
  max_bytes = { type = "integer", min = 1 },
}

local OUTPUT = {
  name = { type = "string", required = true },
  path = { type = "string" },
}

local TASK = {
  alias = { type = "string", required = true },
  deps = { type = "list", item = { type = "string" } },
  priority = { type = "integer" },
  tolerable = { type = "boolean" },
  retries = { type = "integer", min = 0 },
  engine = { type = "string" },
  image = { type = "string" },
  command = { type = "command", limit = "command" },
  env = { type = "map", limit = "env", key_pattern = "^[%a_][%w_]*$",
          item = { type = "string", limit = "env_value" } },
  workdir = { type = "string" },
  inputs = { type = "list", item = { type = "object", fields = INPUT } },
  outputs = { type = "list", item = { type = "object", fields = OUTPUT } },
  resources = { type = "object", fields = {
    cpu = { type = "integer", min = 0 }, memory = { type = "integer", min = 0 },
    disk = { type = "integer", min = 0 }, gpu = { type = "integer", min = 0 },
  } },
  timeout = { type = "number", min = 0 },
  network = { type = "object", fields = {
    mode = { type = "enum", values = { "none", "full", "allow" } },
    domains = { type = "list", item = { type = "string" } },
  } },
  state = RO, attempt = RO, exit_code = RO, signal = RO, outcome = RO, error = RO,
  started_at = RO, ended_at = RO, usage = RO,
}

local JOB = {
  id = { type = "string", fixed = true },
  title = { type = "string", limit = "title" },
  description = { type = "string", limit = "description" },
  labels = { type = "map", limit = "labels", key_limit = "label_key",
             item = { type = "string", limit = "label_value" } },
  priority = { type = "integer" },
  max_parallelism = { type = "integer", min = 0 },
  budget = { type = "number", min = 0 },
  doc = { type = "any" },
  tasks = { type = "list", limit = "tasks", item = { type = "object", fields = TASK } },
  -- The pipeline sets surface and owner; the runtime the rest.
  surface = RO, owner = RO, state = RO, created_at = RO, updated_at = RO, started_at = RO,
  ended_at = RO, error = RO, approval = RO, estimate = RO, progress = RO,
}

M.MODEL = { job = JOB, task = TASK, input = INPUT, output = OUTPUT }

-- Keys of a string-keyed table, sorted (so problems come in a stable order).
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Per field table, worked out once: the names a caller may give, sorted,
-- and the required ones.
local shapes = setmetatable({}, { __mode = "k" })

local function shape_of(fields)
  local sh = shapes[fields]
  if not sh then
    sh = { names = {}, required = {} }
    for _, k in ipairs(sorted_keys(fields)) do
      if fields[k].type ~= "readonly" then sh.names[#sh.names + 1] = k end
      if fields[k].required then sh.required[#sh.required + 1] = k end
    end
    shapes[fields] = sh
  end
  return sh
end

-- Indexes count from 0, as JSON users count.
local function join(path, k)
  if type(k) == "number" then return path .. "[" .. (k - 1) .. "]" end
  if not k:find("^[%a_][%w_%-]*$") then return path .. string.format("[%q]", k) end
  if path == "" then return k end
  return path .. "." .. k
end

local function describe(v)
  if v == NULL then return "null" end
  if type(v) == "table" then return json.is_array(v) and "a list" or "an object" end
  if math.type(v) == "float" then return "a number with a fraction" end
  if type(v) == "number" then return "a number" end
  return "a " .. type(v)
end

-- Decoded JSON marks arrays; a surface's own Lua tables are plain, so
-- the keys decide: all strings make an object, exactly 1..n a list.
local function is_object(v)
  if type(v) ~= "table" or v == NULL or json.is_array(v) then return false end
  for k in pairs(v) do
    if type(k) ~= "string" then return false end
  end
  return true
end

local function is_list(v)
  if type(v) ~= "table" or v == NULL then return false end
  if json.is_array(v) then return true end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v and getmetatable(v) == nil
end

local MAX_ERRORS = 20

local Check = {}
Check.__index = Check

function Check:add(path, fmt, ...)
  if #self.errors < MAX_ERRORS then
    self.errors[#self.errors + 1] = (path == "" and "" or path .. ": ") .. string.format(fmt, ...)
  end
end

function Check:over(path, key, n)
  local spec = M.LIMITS[key]
  self:add(path, "%s limits.%s (%d %s)", spec.unit == "bytes" and "longer than" or "more than",
    key, self.limits[key], spec.unit)
  return n
end

-- bytes of a string or entries of a list/map against limit key.
function Check:bounded(path, key, n)
  if key and n > self.limits[key] then self:over(path, key, n) end
end

local check_value

local function check_object(c, v, path, fields)
  if not is_object(v) then
    c:add(path, "must be an object, got %s", describe(v))
    return v
  end
  local shape = shape_of(fields)
  for _, k in ipairs(sorted_keys(v)) do
    local spec = fields[k]
    local p = join(path, k)
    if not spec then
      local guess = suggest.closest(k, shape.names)
      if guess then
        c:add(p, 'unknown field (did you mean "%s"?)', guess)
      else
        c:add(p, "unknown field (known: %s)", table.concat(shape.names, ", "))
      end
    elseif spec.type == "readonly" then
      c:add(p, "read-only (set by the runtime)")
    elseif spec.fixed and c.partial then
      c:add(p, "cannot be changed after submit")
    elseif v[k] ~= NULL then
      v[k] = check_value(c, v[k], p, spec)
    elseif spec.required then
      c:add(p, "must not be null")
    end
  end
  if not c.partial then
    for _, k in ipairs(shape.required) do
      if v[k] == nil then c:add(join(path, k), "missing (required)") end
    end
  end
  return v
end

function check_value(c, v, path, spec)
  local t = spec.type
  if t == "any" then return v end
  if t == "string" then
    if type(v) ~= "string" then
      c:add(path, "must be a string, got %s", describe(v))
    else
      c:bounded(path, spec.limit, #v)
    end
  elseif t == "integer" or t == "number" then
    local n = type(v) == "number" and (t == "number" and v or math.tointeger(v)) or nil
    if n == nil or n ~= n then
      c:add(path, "must be %s, got %s", t == "integer" and "an integer" or "a number", describe(v))
      return v
    end
    if spec.min and n < spec.min then c:add(path, "must be at least %d", spec.min) end
    return n
  elseif t == "boolean" then
    if type(v) ~= "boolean" then c:add(path, "must be true or false, got %s", describe(v)) end
  elseif t == "enum" then
    local ok = false
    for _, x in ipairs(spec.values) do ok = ok or v == x end
    if not ok then
      local guess = type(v) == "string" and suggest.closest(v, spec.values)
      c:add(path, "must be one of %s%s", table.concat(spec.values, ", "),
        guess and string.format(' (did you mean "%s"?)', guess) or "")
    end
  elseif t == "command" then
    if type(v) == "string" then return v end
    if not is_list(v) then
      c:add(path, "must be a list of strings (or one string for the shell), got %s", describe(v))
      return v
    end
    for i, x in ipairs(v) do
      if type(x) ~= "string" then c:add(join(path, i), "must be a string, got %s", describe(x)) end
    end
    c:bounded(path, spec.limit, #v)
  elseif t == "list" then
    if not is_list(v) then
      c:add(path, "must be a list, got %s", describe(v))
      return v
    end
    c:bounded(path, spec.limit, #v)
    for i = 1, math.min(#v, c.limits[spec.limit] or #v) do
      v[i] = check_value(c, v[i], join(path, i), spec.item)
    end
  elseif t == "map" then
    if not is_object(v) then
      c:add(path, "must be an object of strings, got %s", describe(v))
      return v
    end
    local keys = sorted_keys(v)
    c:bounded(path, spec.limit, #keys)
    for i = 1, math.min(#keys, c.limits[spec.limit] or #keys) do
      local k = keys[i]
      local p = join(path, k)
      if spec.key_pattern and not k:find(spec.key_pattern) then
        c:add(p, "not a valid name")
      elseif spec.key_limit and #k > c.limits[spec.key_limit] then
        c:over(p, spec.key_limit, #k)
      end
      v[k] = check_value(c, v[k], p, spec.item)
    end
  elseif t == "object" then
    return check_object(c, v, path, spec.fields)
  else
    error("submit: unknown field type " .. tostring(t))
  end
  return v
end

--- submit.validate(job, opts) -> job | nil, message. Checks job against
-- the core model (whole floats become integers in place). opts.limits: the
-- limits (submit.limits); opts.partial: an update (nothing required, but
-- tasks, when given, are whole); opts.taskless: a job may have no tasks.
-- The message lists up to 20 problems, each "path: what is wrong".
function M.validate(job, opts)
  opts = opts or {}
  local c = setmetatable({ errors = {}, limits = opts.limits or M.limits(nil), partial = opts.partial },
    Check)
  if not is_object(job) then return nil, "the job must be a JSON object, got " .. describe(job) end
  check_object(c, job, "", JOB)
  local tasks = job.tasks
  if not opts.taskless and (not opts.partial or tasks ~= nil) then
    if tasks == nil or tasks == NULL or (is_list(tasks) and #tasks == 0) then
      c:add("tasks", "a job needs at least one task")
    end
  end
  if #c.errors > 0 then return nil, table.concat(c.errors, "; ") end
  return job
end

return M
