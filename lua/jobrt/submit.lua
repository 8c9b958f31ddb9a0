-- The one submission pipeline every surface calls (DESIGN §7): a surface
-- translates its document to a core-model job and hands it here; the job is
-- checked strictly against the core job model (jobrt.model: unknown fields,
-- types, `limits:`), the surface's approval policies decide, the estimator
-- (where one is configured) prices it, and only then does it reach
-- jobrt.core. Failures are nil, {status, code, message}, in the runtime's
-- own vocabulary; each surface maps them to its own.
local core_mod = require("jobrt.core")
-- After jobrt.core: in plain lua5.4 the rock's core offers jobrt.runtime.
local runtime = require("jobrt.runtime")
local json = require("jobrt.json")
local model = require("jobrt.model")

local M = {}

local NULL = json.null

-- The simple job manager (jobrt.jobs) stores jobs without tasks under this
-- surface; every other job needs at least one task.
local TASKLESS_SURFACE = "jobs"

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

--- submit.view(surface[, core]) -> a read-only table for policies:
--   job(id) -> a copy of the job, when it belongs to surface | nil, err, code
--   jobs{owner =, state =, limit =, after =} -> {jobs, next}: one owner's jobs of surface
--   count{owner =, state = (a state or a list), surface =} -> integer | nil, err, code
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
    return core.count({ owner = q.owner, state = q.state, surface = q.surface })
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
    limits = model.limits(opts.limits),
    core = opts.core or core_mod,
    log = opts.log or function() end,
    images = opts.images,
    policies = {},
  }, Pipeline)
  self.view = M.view(self.surface, self.core)
  local taskless = self.surface == TASKLESS_SURFACE
  self.submit_check = { limits = self.limits, taskless = taskless }
  self.update_check = { limits = self.limits, taskless = taskless, partial = true }
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

--- p:validate(job[, partial]) -> job | nil, failure. The check runs
-- without the deadline hook (runtime.unhooked): its cost is bounded by the
-- limits it enforces, and the hook would triple it.
function Pipeline:validate(job, partial)
  local ok, err = runtime.unhooked(model.validate, job, partial and self.update_check or self.submit_check)
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
      options = p.options, principal = copy(opts.principal), log = self.log, core = self.view,
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
        -- The first reason to wait is the job's event message as well as its log line.
        hold = "awaiting approval (" .. p.name .. (type(reason) == "string" and (": " .. reason) or "") .. ")"
        why = hold
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

-- The images of job's tasks that are to be pulled first (images.pull:
-- on_demand, a registry of images.registries, not in the store yet).
local function images_to_pull(self, job)
  local imgs = self.images
  if not imgs or imgs.pull_mode ~= "on_demand" or type(job.tasks) ~= "table" then return nil end
  local names, seen = {}, {}
  for _, t in ipairs(job.tasks) do
    local name = type(t) == "table" and t.image
    if type(name) == "string" and not seen[name] then
      seen[name] = true
      if imgs.resolve(name) == "pull" then names[#names + 1] = name end
    end
  end
  return #names > 0 and names or nil
end

-- Job id (stored, not started) starts once its images are pulled; a
-- failed pull cancels it with the reason. Meanwhile the images view says
-- why it waits (jobrt.image_pull.waiting).
function Pipeline:pull_then_start(id, names, opts)
  local imgs, left, failed, finished = self.images, #names, nil, {}
  imgs.hold(id, names)
  self.core.log(id, { level = "info", message = "waiting for image" .. (#names > 1 and "s " or " ")
    .. table.concat(names, ", ") .. " to be pulled" })
  local function finish()
    imgs.release(id)
    require("jobrt.async").spawn(function()
      if failed then
        self.core.log(id, { level = "error", message = "pulling image " .. failed })
        self.core.cancel(id, "image pull failed: " .. failed)
        return
      end
      local ok, f = self:start(id, opts)
      if not ok then self.log("warn", string.format("job %s: start after the image pull: %s", id,
        tostring(f and f.message or f))) end
    end, { on_error = function(err) self.log("error", "job " .. id .. ": " .. tostring(err)) end })
  end
  for _, name in ipairs(names) do
    local started, err = imgs.ensure(name, function(st)
      if finished[name] or (st.phase ~= "done" and st.phase ~= "failed") then return end
      finished[name] = true
      if st.phase == "failed" then failed = failed or (name .. ": " .. tostring(st.error)) end
      left = left - 1
      if left == 0 then finish() end
    end)
    if not started and not finished[name] then
      finished[name] = true
      failed = failed or (name .. ": " .. tostring(err))
      left = left - 1
      if left == 0 then finish() end
    end
  end
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
  -- A job whose images are still to be pulled is stored now and started
  -- (its policies asked again) once they are in.
  local pulls = decision and not decision.reject and images_to_pull(self, job)
  local stored, err, code = self.core.submit(job, pulls and {} or decision or {})
  if not stored then return nil, M.core_failure(err, code) end
  if pulls then
    self:pull_then_start(stored.id, pulls, opts)
    stored.waiting = self.images.waiting(stored.id)
    return stored
  end
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
    -- Required here: the rock's plain-Lua users of this module may lack luv.
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
