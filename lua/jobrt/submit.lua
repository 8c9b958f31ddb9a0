-- The one submission pipeline every surface calls (DESIGN §7): a surface
-- translates its document to a core-model job and hands it here; the job is
-- validated strictly against one declarative description of the core job
-- model (unknown fields, types, `limits:`), the surface's approval policies
-- decide, the estimator (where one is configured) prices it, and only then
-- does it reach jobrt.core. Failures are nil, {status, code, message}, in
-- the runtime's own vocabulary; each surface maps them to its own.
local core_mod = require("jobrt.core")
local json = require("jobrt.json")
local units = require("jobrt.units")
local suggest = require("jobrt.suggest")

local M = {}

local NULL = json.null
local KiB, MiB = 1024, 1024 * 1024

-- The simple job manager (jobrt.jobs) stores jobs without tasks under this
-- surface; every other job needs at least one task.
local TASKLESS_SURFACE = "jobs"

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

---------------------------------------------------------------------------
-- Failures: the core's codes, mapped once.

M.CORE_ERRORS = {
  NOT_FOUND = { 404, "NotFound" },
  INVALID = { 400, "BadRequest" },
  CONFLICT = { 409, "Conflict" },
  LOCKED = { 409, "Locked" },
  EXISTS = { 409, "Conflict" },
  STORE = { 503, "Unavailable" },
  SYSTEM = { 500, "Internal" },
}

local function failure(status, code, message)
  return { status = status, code = code, message = message }
end

--- submit.core_failure(message, core_code) -> {status, code, message}
function M.core_failure(message, code)
  local m = M.CORE_ERRORS[code] or M.CORE_ERRORS.SYSTEM
  local f = failure(m[1], m[2], message or "the core failed")
  f.core_code = code
  return f
end

---------------------------------------------------------------------------
-- The narrow view of the core that policies get: read-only, one surface.

local COUNT_PAGE = 1000
M.COUNT_MAX = 10000

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return setmetatable(out, getmetatable(v))
end

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error(name .. " is read-only", 2) end,
    __metatable = false,
  })
end

local function states_of(state)
  if state == nil then return { false } end
  if type(state) == "string" then return { state } end
  if type(state) == "table" then return state end
  error("state must be a job state or a list of them", 3)
end

-- count{owner, state, surface} with core.count when the core has it, else
-- by paging core.list, up to COUNT_MAX (a quota needs no more).
local function count_jobs(core, q)
  if type(core.count) == "function" then return core.count(q) end
  local n, after = 0, nil
  repeat
    local page, err, code = core.list({ owner = q.owner, state = q.state, surface = q.surface,
                                        after = after, limit = COUNT_PAGE })
    if not page then return nil, err, code end
    n = n + #page.jobs
    after = page.next
  until after == nil or n >= M.COUNT_MAX
  return math.min(n, M.COUNT_MAX)
end

--- submit.view(surface[, core]) -> a read-only table for policies:
--   job(id) -> a copy of the job, when it belongs to surface | nil, err, code
--   jobs{owner =, state =, limit =, after =} -> {jobs, next}: one owner's jobs of surface
--   count{owner =, state = (a state or a list), surface =} -> integer (at most COUNT_MAX)
function M.view(surface, core)
  core = core or core_mod
  local v = {}
  function v.job(id)
    if type(id) ~= "string" then error("job: id must be a string", 2) end
    local job, err, code = core.get(id)
    if not job then return nil, err, code end
    if job.surface ~= surface then return nil, string.format("job '%s' not found", id), "NOT_FOUND" end
    return copy(job)
  end
  function v.jobs(q)
    if type(q) ~= "table" or type(q.owner) ~= "string" then error("jobs: {owner = NAME} expected", 2) end
    local page, err, code = core.list({ owner = q.owner, state = q.state, surface = surface,
                                        limit = q.limit, after = q.after })
    if not page then return nil, err, code end
    return copy(page)
  end
  function v.count(q)
    if type(q) ~= "table" or type(q.owner) ~= "string" then error("count: {owner = NAME} expected", 2) end
    local total = 0
    for _, state in ipairs(states_of(q.state)) do
      local n, err, code = count_jobs(core, { owner = q.owner, state = state or nil, surface = q.surface })
      if not n then return nil, err, code end
      total = total + n
    end
    return math.min(total, M.COUNT_MAX)
  end
  return readonly(v, "the core view")
end

---------------------------------------------------------------------------
-- Pipelines: one per mounted surface.

local Pipeline = {}
Pipeline.__index = Pipeline

local function plugin_fn(mod, field)
  if type(mod) == "function" then return mod end
  if type(mod) == "table" and type(mod[field]) == "function" then return mod[field] end
  return nil
end

-- The approval policies of the surface (`approval: [plugin names]`).
local function load_policies(self, names, plugin)
  if names == nil or names == NULL then return true end
  if type(names) ~= "table" then
    return nil, string.format("surfaces.%s.approval must be a list of plugin names", self.surface)
  end
  for _, name in ipairs(names) do
    local mod, options = plugin(name)
    if not mod then return nil, tostring(options) end
    local fn = plugin_fn(mod, "approve")
    if not fn then
      return nil, "plugin " .. name .. ": an approval policy returns function(job, ctx) or {approve = ...}"
    end
    self.policies[#self.policies + 1] = { name = name, fn = fn, options = options }
  end
  return true
end

--- submit.new(opts) -> pipeline | nil, err. opts: surface (name), config
-- (the surface's YAML entry: approval, estimator), limits (the YAML's
-- limits), plugin (function(name) -> module, options | nil, err), log
-- (function(level, msg)), estimator (the plugin name when config names
-- none; false: none), core (jobrt.core; tests give another). Policies and
-- the estimator are loaded here, once, so a broken one stops start-up.
function M.new(opts)
  local config = opts.config or {}
  local self = setmetatable({
    surface = opts.surface,
    limits = M.limits(opts.limits),
    core = opts.core or core_mod,
    log = opts.log or function() end,
    policies = {},
  }, Pipeline)
  self.view = M.view(self.surface, self.core)
  local ok, err = load_policies(self, config.approval, opts.plugin)
  if not ok then return nil, err end
  local est = config.estimator
  if est == nil or est == NULL then est = opts.estimator end
  if est then
    local mod, options = opts.plugin(est)
    if not mod then return nil, tostring(options) end
    self.estimator = plugin_fn(mod, "estimate")
    if not self.estimator then
      return nil, "plugin " .. est .. ": an estimator returns {estimate = function(job, ctx)}"
    end
    self.estimator_name, self.estimator_options = est, options
  end
  return self
end

--- p:validate(job[, partial]) -> job | nil, failure
function Pipeline:validate(job, partial)
  local ok, err = M.validate(job, { limits = self.limits, partial = partial,
                                    taskless = self.surface == TASKLESS_SURFACE })
  if not ok then return nil, failure(400, "BadRequest", err) end
  return job
end

-- Run the policies in order: the first "reject" decides; any "wait" holds
-- the job for approval; otherwise it starts. -> core.start's options, the
-- reason to log | nil, failure
function Pipeline:decide(job, opts)
  local hold, why
  for _, p in ipairs(self.policies) do
    local ok, decision, reason = pcall(p.fn, job, {
      options = p.options, principal = opts.principal, log = self.log, core = self.view,
      surface = self.surface,
    })
    if not ok then
      self.log("error", "approval policy " .. p.name .. " failed: " .. tostring(decision))
      return nil, failure(500, "PolicyFailed", string.format("approval policy %s failed%s", p.name,
        opts.request_id and (" (request " .. opts.request_id .. ")") or ""))
    end
    if decision == "reject" then
      reason = type(reason) == "string" and reason or ("rejected by policy " .. p.name)
      return { start = true, reject = reason }, "rejected by " .. p.name .. ": " .. reason
    elseif decision == "wait" then
      if not hold then
        hold = true
        why = "awaiting approval (" .. p.name .. (type(reason) == "string" and (": " .. reason) or "") .. ")"
      end
    elseif decision ~= "accept" then
      return nil, failure(500, "PolicyFailed", string.format(
        "approval policy %s answered %s; expected accept, reject or wait", p.name, tostring(decision)))
    end
  end
  return { start = true, hold = hold }, why
end

-- The decision goes into the job's log, where every surface shows logs.
function Pipeline:note(id, decision, why)
  if why then
    self.core.log(id, { level = decision.reject and "error" or "info", message = why })
  end
end

--- p:estimate(job[, extra]) -> estimate | nil, {code, message}. extra
-- goes into the estimator's ctx (what the surface knows of the work).
function Pipeline:estimate(job, extra)
  if not self.estimator then return nil, { code = "EstimateUnavailable", message = "no estimator configured" } end
  local ctx = { options = self.estimator_options }
  for k, v in pairs(extra or {}) do ctx[k] = v end
  local ok, est, err = pcall(self.estimator, job, ctx)
  if not ok then
    self.log("error", "estimator " .. self.estimator_name .. " failed: " .. tostring(est))
    return nil, { code = "EstimateComplexity", message = "The estimator failed." }
  end
  if type(est) ~= "table" then return nil, err end
  return est
end

--- p:submit(job, opts) -> job | nil, failure. opts: owner, start (run the
-- policies and start the job), principal and request_id (for policies),
-- estimate (extra estimator context).
function Pipeline:submit(job, opts)
  opts = opts or {}
  local ok, f = self:validate(job)
  if not ok then return nil, f end
  job.surface, job.owner = self.surface, opts.owner
  local decision, why
  if opts.start then
    decision, why = self:decide(job, opts)
    if not decision then return nil, why end
  end
  if self.estimator then
    local est = self:estimate(job, opts.estimate)
    if est then job.estimate = est end
  end
  local stored, err, code = self.core.submit(job, decision or {})
  if not stored then return nil, M.core_failure(err, code) end
  if decision then self:note(stored.id, decision, why) end
  return stored
end

local STOPPING_TRIES, STOPPING_WAIT = 100, 0.05

--- p:start(id, opts) -> job | nil, failure. Asks the policies again (a
-- job may have changed since); opts as for submit. A job whose tasks are
-- still stopping is waited for (about 5 s at most).
function Pipeline:start(id, opts)
  opts = opts or {}
  local job, err, code = self.core.get(id)
  if not job then return nil, M.core_failure(err, code) end
  local decision, why = self:decide(job, opts)
  if not decision then return nil, why end
  local started
  for _ = 1, STOPPING_TRIES do
    started, err, code = self.core.start(id, decision)
    if started or code ~= "CONFLICT" or not tostring(err):find("still stopping", 1, true) then break end
    require("jobrt.async").sleep(STOPPING_WAIT)
  end
  if not started then return nil, M.core_failure(err, code) end
  self:note(id, decision, why)
  return started
end

--- p:update(id, changes) -> job | nil, failure. changes is a partial job.
function Pipeline:update(id, changes)
  local ok, f = self:validate(changes, true)
  if not ok then return nil, f end
  local job, err, code = self.core.update(id, changes)
  if not job then return nil, M.core_failure(err, code) end
  return job
end

--- p:approve(id, {accept, reason, by}) -> job | nil, failure: an
-- administrator's decision on a job awaiting approval, logged.
function Pipeline:approve(id, d)
  local job, err, code = self.core.approve(id, d)
  if not job then return nil, M.core_failure(err, code) end
  local what = d.accept and "approved" or "rejected"
  self.core.log(id, { level = d.accept and "info" or "error", message = string.format("%s by %s%s",
    what, tostring(d.by or "an administrator"), d.reason and (": " .. d.reason) or "") })
  return job
end

return M
