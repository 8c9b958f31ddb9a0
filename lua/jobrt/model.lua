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
  label_key = { default = 63, unit = "bytes" },
  label_value = { default = 256, unit = "bytes" },
  labels = { default = 64, unit = "entries" },
  -- The sandbox takes 256 variables, the runtime's own (JOBRT_*, HOME,
  -- proxies) among them.
  env = { default = 128, unit = "entries" },
  env_value = { default = 32 * KiB, unit = "bytes" },
  tasks = { default = 1000, unit = "entries" },
  inline_input = { default = 1 * MiB, unit = "bytes" },
  argv = { default = 4096, unit = "entries" },
}

--- model.limits(cfg_limits) -> {key = integer}: the deployment's limits
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
  -- Tasks sharing a group count once under max_parallelism and start side
  -- by side (the parties of one Kuscia task); same name rules as alias.
  group = { type = "string" },
  deps = { type = "list", item = { type = "string" } },
  priority = { type = "integer" },
  tolerable = { type = "boolean" },
  retries = { type = "integer", min = 0 },
  engine = { type = "string" },
  image = { type = "string" },
  command = { type = "command", limit = "argv" },
  -- Replaces an image's Entrypoint (images of the image store); command is
  -- then its arguments (Docker's rule).
  entrypoint = { type = "list", limit = "argv", item = { type = "string" } },
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
  -- Why the job waits (the runtime's reasons, and Pulling for its images).
  waiting = RO,
}

M.MODEL = { job = JOB, task = TASK, input = INPUT, output = OUTPUT }

-- Keys sorted, so problems come in a stable order.
local sorted_keys = require("jobrt.tables").sorted_keys

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

local function describe(v)
  if v == NULL then return "null" end
  if type(v) == "table" then return json.is_array(v) and "a list" or "an object" end
  if math.type(v) == "float" then return "a number with a fraction" end
  if type(v) == "number" then return "a number" end
  return "a " .. type(v)
end

-- The codec's marks, compared directly: the check asks on every value.
local ARRAY_MT = getmetatable(json.array({}))
local OBJECT_MT = getmetatable(json.object({}))

local function is_array(v)
  local mt = getmetatable(v)
  if mt == nil or mt == OBJECT_MT then return false end
  return mt == ARRAY_MT or json.is_array(v)
end

-- Decoded JSON marks arrays; a surface's own Lua tables are plain, so
-- the keys decide: all strings make an object, exactly 1..n a list.
-- check_object looks at the keys itself, as it walks them.
local function is_table_object(v)
  return type(v) == "table" and v ~= NULL and not is_array(v)
end

local function is_object(v)
  if not is_table_object(v) then return false end
  for k in pairs(v) do
    if type(k) ~= "string" then return false end
  end
  return true
end

local function is_list(v)
  if type(v) ~= "table" or v == NULL then return false end
  if is_array(v) then return true end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v and getmetatable(v) == nil
end

local MAX_ERRORS = 20

-- One check: the keys from the root to the value at hand (a stack, so that
-- a path string is made only for a problem), and the problems found.
local Check = {}
Check.__index = Check

function Check:add(fmt, ...)
  self.errors[#self.errors + 1] = { keys = table.move(self.keys, 1, self.depth, 1, {}),
                                    message = string.format(fmt, ...) }
end

function Check:over(key)
  local spec = M.LIMITS[key]
  self:add("%s limits.%s (%d %s)", spec.unit == "bytes" and "longer than" or "more than",
    key, self.limits[key], spec.unit)
end

-- n (bytes of a string, entries of a list or map) against limit key:
-- true when within it.
function Check:bounded(key, n)
  if key and n > self.limits[key] then
    self:over(key)
    return false
  end
  return true
end

-- "tasks[0].env.PATH": indexes count from 0, as JSON users count.
local function path_of(keys)
  local out = ""
  for _, k in ipairs(keys) do
    if type(k) == "number" then
      out = out .. "[" .. (k - 1) .. "]"
    elseif not k:find("^[%a_][%w_%-]*$") then
      out = out .. string.format("[%q]", k)
    else
      out = out .. (out == "" and "" or ".") .. k
    end
  end
  return out
end

-- Problems in document order: key by key, indexes as numbers.
local function before(a, b)
  local ka, kb = a.keys, b.keys
  for i = 1, math.min(#ka, #kb) do
    local x, y = ka[i], kb[i]
    if x ~= y then
      if type(x) ~= type(y) then return type(x) == "number" end
      return x < y
    end
  end
  if #ka ~= #kb then return #ka < #kb end
  return a.message < b.message
end

function Check:report()
  table.sort(self.errors, before)
  local out = {}
  for i = 1, math.min(#self.errors, MAX_ERRORS) do
    local e = self.errors[i]
    local path = path_of(e.keys)
    out[i] = (path == "" and "" or path .. ": ") .. e.message
  end
  return table.concat(out, "; ")
end

-- One checker per field type: checker(c, v, spec) -> v, converted where
-- the model says so. The key of v is on top of c.keys.
local CHECKERS = {}

local function check_value(c, v, spec)
  local checker = CHECKERS[spec.type]
  if not checker then error("model: unknown field type " .. tostring(spec.type)) end
  return checker(c, v, spec)
end

local function check_object(c, v, fields)
  if not is_table_object(v) then
    c:add("must be an object, got %s", describe(v))
    return v
  end
  local shape, keys, depth = shape_of(fields), c.keys, c.depth + 1
  c.depth = depth
  for k, x in pairs(v) do
    local spec = fields[k]
    if type(k) ~= "string" then
      keys[depth] = nil
      c.depth = depth - 1
      c:add("must be an object: its keys must be strings")
      return v
    end
    keys[depth] = k
    if not spec then
      local guess = suggest.closest(k, shape.names)
      if guess then
        c:add('unknown field (did you mean "%s"?)', guess)
      else
        c:add("unknown field (known: %s)", table.concat(shape.names, ", "))
      end
    elseif spec.type == "readonly" then
      c:add("read-only (set by the runtime)")
    elseif spec.fixed and c.partial then
      c:add("cannot be changed after submit")
    elseif x ~= NULL then
      local y = check_value(c, x, spec)
      if y ~= x or type(y) == "number" then v[k] = y end
    elseif spec.required then
      c:add("must not be null")
    end
  end
  if not c.partial then
    for _, k in ipairs(shape.required) do
      if v[k] == nil then
        keys[depth] = k
        c:add("missing (required)")
      end
    end
  end
  keys[depth] = nil
  c.depth = depth - 1
  return v
end

CHECKERS.any = function(_, v) return v end

CHECKERS.readonly = CHECKERS.any

CHECKERS.object = function(c, v, spec) return check_object(c, v, spec.fields) end

CHECKERS.string = function(c, v, spec)
  if type(v) ~= "string" then
    c:add("must be a string, got %s", describe(v))
  elseif spec.limit then
    c:bounded(spec.limit, #v)
  end
  return v
end

local function numeric(c, v, spec)
  local t = spec.type
  local n = type(v) == "number" and (t == "number" and v or math.tointeger(v)) or nil
  if n == nil or n ~= n then
    c:add("must be %s, got %s", t == "integer" and "an integer" or "a number", describe(v))
    return v
  end
  if spec.min and n < spec.min then c:add("must be at least %d", spec.min) end
  return n
end
CHECKERS.integer, CHECKERS.number = numeric, numeric

CHECKERS.boolean = function(c, v)
  if type(v) ~= "boolean" then c:add("must be true or false, got %s", describe(v)) end
  return v
end

CHECKERS.enum = function(c, v, spec)
  for _, x in ipairs(spec.values) do
    if v == x then return v end
  end
  local guess = type(v) == "string" and suggest.closest(v, spec.values)
  c:add("must be one of %s%s", table.concat(spec.values, ", "),
    guess and string.format(' (did you mean "%s"?)', guess) or "")
  return v
end

-- Each item of the list v with check(c, item, i) -> item, under its index.
local function each_item(c, v, check, spec)
  local keys, depth = c.keys, c.depth + 1
  c.depth = depth
  for i, x in ipairs(v) do
    keys[depth] = i
    v[i] = check(c, x, spec)
  end
  keys[depth] = nil
  c.depth = depth - 1
end

local ARGUMENT = { type = "string" }

CHECKERS.command = function(c, v, spec)
  if type(v) == "string" then return v end
  if not is_list(v) then
    c:add("must be a list of strings (or one string for the shell), got %s", describe(v))
  elseif c:bounded(spec.limit, #v) then
    each_item(c, v, CHECKERS.string, ARGUMENT)
  end
  return v
end

CHECKERS.list = function(c, v, spec)
  if not is_list(v) then
    c:add("must be a list, got %s", describe(v))
  elseif c:bounded(spec.limit, #v) then
    each_item(c, v, check_value, spec.item)
  end
  return v
end

CHECKERS.map = function(c, v, spec)
  if not is_object(v) then
    c:add("must be an object of strings, got %s", describe(v))
    return v
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if not c:bounded(spec.limit, n) then return v end
  local keys, depth = c.keys, c.depth + 1
  c.depth = depth
  for k, x in pairs(v) do
    keys[depth] = k
    if spec.key_pattern and not k:find(spec.key_pattern) then
      c:add("not a valid name")
    elseif spec.key_limit and #k > c.limits[spec.key_limit] then
      c:over(spec.key_limit)
    end
    check_value(c, x, spec.item)
  end
  keys[depth] = nil
  c.depth = depth - 1
  return v
end

-- A job needs a task (unless opts.taskless); an update only when it gives
-- tasks.
local function lacks_tasks(job, opts)
  local tasks = job.tasks
  if opts.taskless or (opts.partial and tasks == nil) then return false end
  return tasks == nil or tasks == NULL or (is_list(tasks) and #tasks == 0)
end

-- A check's state is kept per opts table and used again: on a busy
-- daemon every byte allocated here costs collector work, which was most of
-- the price of checking a small job.
local checks = setmetatable({}, { __mode = "k" })

--- model.walk(job, opts, limits) -> job | nil, message: the check in Lua,
-- which names the problems (model.validate runs it when the C walker finds
-- any; the agreement test runs it alone).
function M.walk(job, opts, limits)
  local c = checks[opts]
  if not c then
    c = setmetatable({ errors = {}, keys = {} }, Check)
    checks[opts] = c
  elseif #c.errors > 0 then
    c.errors, c.keys = {}, {}
  end
  c.depth, c.partial, c.limits = 0, opts.partial, limits
  if not is_table_object(job) then return nil, "the job must be a JSON object, got " .. describe(job) end
  check_object(c, job, JOB)
  if lacks_tasks(job, opts) then
    c.keys[1], c.depth = "tasks", 1
    c:add("a job needs at least one task")
  end
  if #c.errors > 0 then return nil, c:report() end
  return job
end

-- The same walk in C (runtime/lua/model_check.c), reading the tables
-- above: it only says whether the job passes, allocating nothing, and so
-- costs a small part of the Lua walk. Plain lua5.4 has only the Lua one.
local ok_c, modelc = pcall(require, "jobrt.modelc")
M.check_c = ok_c and modelc.check or nil

--- model.validate(job, opts) -> job | nil, message. Checks job against
-- the core model (whole floats become integers in place). opts.limits: the
-- limits (model.limits); opts.partial: an update (nothing required, but
-- tasks, when given, are whole); opts.taskless: a job may have no tasks.
-- The message lists up to 20 problems in document order, each
-- "path: what is wrong".
function M.validate(job, opts)
  opts = opts or {}
  local limits = opts.limits or M.limits(nil)
  local check = M.check_c
  if check and check(job, JOB, limits, opts.partial) and not lacks_tasks(job, opts) then
    return job
  end
  return M.walk(job, opts, limits)
end

return M
