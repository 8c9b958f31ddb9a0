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

-- Task states whose resources are no longer held.
local TASK_DONE = { succeeded = true, failed = true, canceled = true, skipped = true }
local ACTIVE = { "queued", "running" }
local USAGE_PAGE, USAGE_PAGES = 200, 50

--- submit.demand(job) -> cpu (millicores), memory (bytes): what a job's
-- tasks ask for together (those not finished, for a stored job).
function M.demand(job)
  local cpu, memory = 0, 0
  for _, t in ipairs(type(job) == "table" and job.tasks or {}) do
    if not TASK_DONE[t.state] then
      local r = type(t.resources) == "table" and t.resources or {}
      cpu = cpu + (tonumber(r.cpu) or 0)
      memory = memory + (tonumber(r.memory) or 0)
    end
  end
  return cpu, memory
end

--- submit.view(surface[, core]) -> a read-only table for policies:
--   job(id) -> a copy of the job, when it belongs to surface | nil, err, code
--   jobs{owner =, state =, limit =, after =} -> {jobs, next}: one owner's jobs of surface
--   count{owner =, state = (a state or a list), surface =} -> integer | nil, err, code
--   usage{owner =} -> {jobs, cpu, memory} | nil, err, code: the owner's
--     queued and running jobs on every surface, and the cpu (millicores)
--     and memory (bytes) their unfinished tasks ask for
--   finished{owner =, limit =} -> a list of the owner's most recent
--     succeeded jobs of surface (copies, with tasks), newest first
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
  function v.usage(q)
    if type(q) ~= "table" or type(q.owner) ~= "string" then error("usage: {owner = NAME} expected", 2) end
    local total = { jobs = 0, cpu = 0, memory = 0 }
    for _, state in ipairs(ACTIVE) do
      local after
      for _ = 1, USAGE_PAGES do
        local page, err, code = core.list({ owner = q.owner, state = state, limit = USAGE_PAGE, after = after })
        if not page then return nil, err, code end
        for _, row in ipairs(page.jobs) do
          local job = core.get(row.id)
          if job and job.state == state then
            local cpu, memory = M.demand(job)
            total.jobs, total.cpu, total.memory = total.jobs + 1, total.cpu + cpu, total.memory + memory
          end
        end
        if not page.next then break end
        after = page.next
      end
    end
    return total
  end
  function v.finished(q)
    if type(q) ~= "table" or type(q.owner) ~= "string" then error("finished: {owner = NAME} expected", 2) end
    local want = math.max(1, math.min(math.tointeger(q.limit) or 20, 200))
    local rows, after = {}, nil
    -- The store pages oldest first: read them all (bounded) and keep the newest.
    for _ = 1, USAGE_PAGES do
      local page, err, code = core.list({ owner = q.owner, state = "succeeded", surface = surface,
                                          limit = USAGE_PAGE, after = after })
      if not page then return nil, err, code end
      for _, row in ipairs(page.jobs) do
        rows[#rows + 1] = row
        if #rows > want then table.remove(rows, 1) end
      end
      if not page.next then break end
      after = page.next
    end
    local out = {}
    for i = #rows, 1, -1 do
      local job = core.get(rows[i].id)
      if job then out[#out + 1] = copy(job) end
    end
    return out
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
-- none; false: none), core (jobrt.core; tests give another), on_hold
-- (function(job, when): a job was held; when says what it waits for). Policies and
-- the estimator are loaded here, once, so a broken one stops start-up.
function M.new(opts)
  local config = opts.config or {}
  local self = setmetatable({
    surface = opts.surface,
    limits = model.limits(opts.limits),
    core = opts.core or core_mod,
    log = opts.log or function() end,
    images = opts.images,
    on_hold = opts.on_hold,
    policies = {},
  }, Pipeline)
  self.view = M.view(self.surface, self.core)
  local taskless = self.surface == TASKLESS_SURFACE
  self.submit_check = { limits = self.limits, taskless = taskless }
  self.update_check = { limits = self.limits, taskless = taskless, partial = true }
  -- core.submit_body's options, made once.
  self.body_opts = { surface = self.surface, limits = self.limits }
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

-- What may change a waiting policy's mind, merged over the policies that
-- wait: owner = a job of the same owner ends, at = that time (epoch s).
local function merge_when(into, w)
  if type(w) ~= "table" then return into end
  into = into or {}
  if w.owner then into.owner = true end
  local at = tonumber(w.at)
  if at and (not into.at or at < into.at) then into.at = at end
  return into
end

-- Run the policies in order: the first "reject" decides; any "wait" holds
-- the job for approval, the first waiting policy saying why; otherwise it
-- starts. -> core.start's options plus held = {by, reason} and when (see
-- merge_when), the line to log | nil, failure. opts.recheck: the job is
-- held and asked again (no principal then).
function Pipeline:decide(job, opts)
  local held, why, when
  for _, p in ipairs(self.policies) do
    local ok, decision, reason, wake = pcall(p.fn, job, {
      options = p.options, principal = copy(opts.principal), log = self.log, core = self.view,
      surface = self.surface, now = os.time(), recheck = opts.recheck == true,
    })
    if not ok then
      self.log("error", "approval policy " .. p.name .. " failed: " .. tostring(decision))
      return nil, failure(500, "PolicyFailed", string.format("approval policy %s failed%s", p.name,
        opts.request_id and (" (request " .. opts.request_id .. ")") or ""))
    end
    if decision == "reject" then
      reason = type(reason) == "string" and reason or ("rejected by policy " .. p.name)
      return { start = true, reject = reason, by = p.name }, "rejected by " .. p.name .. ": " .. reason
    elseif decision == "wait" then
      local text = type(reason) == "string" and reason ~= "" and reason or nil
      if not held then
        held = { by = p.name, reason = text or ("held by policy " .. p.name) }
        -- The first reason to wait is the job's event message as well as its log line.
        why = "awaiting approval (" .. p.name .. (text and (": " .. text) or "") .. ")"
      end
      when = merge_when(when, wake)
    elseif decision ~= "accept" then
      return nil, failure(500, "PolicyFailed", string.format(
        "approval policy %s answered %s; expected accept, reject or wait", p.name, tostring(decision)))
    end
  end
  return { start = true, hold = why, held = held, when = when }, why
end

-- The decision goes into the job's log, where every surface shows logs; a
-- held job also records who holds it and why (job.approval), and the
-- daemon learns what to wait for (opts.on_hold).
function Pipeline:note(job, decision, why)
  if why then
    self.core.log(job.id, { level = decision.reject and "error" or "info", message = why })
  end
  if decision.held then
    self.core.hold(job.id, decision.held)
    if self.on_hold then self.on_hold(job, decision.when) end
  end
end

--- p:may_approve(principal, job) -> boolean: admins decide on every held
-- job; the roles the holding policy names (approve.manual's `roles`) on
-- the jobs it holds.
function Pipeline:may_approve(principal, job)
  local auth = require("jobrt.auth")
  if principal == nil then return false end
  if auth.has_role(principal, "admin") then return true end
  local by = type(job) == "table" and type(job.approval) == "table" and job.approval.by or nil
  for _, p in ipairs(self.policies) do
    if p.name == by and type(p.options) == "table" and type(p.options.roles) == "table" then
      for _, role in ipairs(p.options.roles) do
        if auth.has_role(principal, role) then return true end
      end
    end
  end
  return false
end

--- p:recheck(id) -> when | nil[, err]: asks the policies again about a
-- held job (what it waited for changed). Accepted, it is released
-- (approved "by the approval policies"); rejected, it is rejected with the
-- reason; still waiting, its reason is brought up to date and what it now
-- waits for is returned. A job no longer held gives nil; a failing policy
-- (written to the job's log) nil and the failure.
function Pipeline:recheck(id)
  local job = self.core.get(id)
  if not job or job.state ~= "awaiting_approval" then return nil end
  local decision, why = self:decide(job, { recheck = true })
  if not decision then
    local msg = tostring(why and why.message)
    self.core.log(id, { level = "error", message = "asking the approval policies again failed: " .. msg })
    return nil, msg
  end
  if decision.reject then
    self:approve(id, { accept = false, by = "policy " .. decision.by, reason = decision.reject })
    return nil
  end
  if decision.held then
    local a = type(job.approval) == "table" and job.approval or {}
    if a.by ~= decision.held.by or a.reason ~= decision.held.reason then
      self.core.hold(id, decision.held)
      self.core.log(id, { level = "info", message = why })
    end
    return decision.when
  end
  self:approve(id, { accept = true, by = "the approval policies", reason = "what the job waited for changed" })
  return nil
end

--- p:estimate(job[, extra]) -> estimate | nil, {code, message}. extra
-- goes into the estimator's ctx (what the surface knows of the work).
function Pipeline:estimate(job, extra)
  if not self.estimator then return nil, { code = "EstimateUnavailable", message = "no estimator configured" } end
  local ctx = { options = self.estimator_options, surface = self.surface, core = self.view }
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
-- failed pull fails it with the reason (its error). Meanwhile the images view says
-- why it waits (jobrt.image_pull.waiting). The first such log line carries
-- the names as data.pulling: written in the job's own transaction, it is
-- how the next daemon finds the job again after a stop or a crash
-- (jobrt.pull_resume). opts.resumed: that daemon, which says so instead.
function Pipeline:pull_then_start(id, names, opts)
  local imgs, left, failed, finished = self.images, #names, nil, {}
  imgs.hold(id, names)
  local list = table.concat(names, ", ")
  if opts.resumed then
    self.core.log(id, { level = "info", message = "the daemon restarted: pulling image"
      .. (#names > 1 and "s " or " ") .. list .. " again (resumed from what was downloaded)" })
  else
    self.core.log(id, { level = "info", message = "waiting for image" .. (#names > 1 and "s " or " ")
      .. list .. " to be pulled", data = { pulling = names } })
  end
  local function finish()
    imgs.release(id)
    require("jobrt.async").spawn(function()
      -- Canceled or started by hand meanwhile: that decision stands.
      local job = self.core.get(id)
      if not job or job.state ~= "created" then return end
      if failed then
        self.core.log(id, { level = "error", message = "pulling image " .. failed })
        self.core.fail(id, "image pull failed: " .. failed)
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

--- p:resume_pulls(id, names): job id (created) waited for the pulls of
-- names when the last daemon stopped. Those now in the store need none;
-- the others are pulled again (their partial downloads resumed), then the
-- job starts as after its submission, its policies asked again without a
-- principal (as for a held job asked again).
function Pipeline:resume_pulls(id, names)
  local left = {}
  for _, name in ipairs(names) do
    if self.images and self.images.resolve(name) ~= "store" then left[#left + 1] = name end
  end
  if #left > 0 then return self:pull_then_start(id, left, { resumed = true }) end
  self.core.log(id, { level = "info", message = "the daemon restarted: image"
    .. (#names > 1 and "s " or " ") .. table.concat(names, ", ") .. " pulled meanwhile" })
  local ok, f = self:start(id, {})
  if not ok then self.log("warn", string.format("job %s: start after the image pull: %s", id,
    tostring(f and f.message or f))) end
end

--- p:submit(job, opts) -> job | nil, failure. opts: owner, start (run the
-- policies and start the job), principal and request_id (for policies),
-- estimate (extra estimator context), answer ("json": a job only created
-- comes back as {id, surface, owner, state, json}, see core.submit).
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
  -- (its policies asked again) once they are in; its answer says why it
  -- waits, so it is not the ready-made text.
  local pulls = decision and not decision.reject and images_to_pull(self, job)
  local how = pulls and {} or decision or {}
  if not pulls then how.answer = opts.answer end
  local stored, err, code = self.core.submit(job, how)
  if not stored then return nil, M.core_failure(err, code) end
  if pulls then
    self:pull_then_start(stored.id, pulls, opts)
    stored.waiting = { reason = "Pulling", message = self.images.waiting(stored.id) }
    return stored
  end
  if decision then
    self:note(stored, decision, why)
    if decision.held then stored = self.core.get(stored.id) or stored end
  end
  return stored
end

--- p:submit_body(text, opts) -> job | false | nil, failure: a native job
-- document submitted from its JSON text in one pass (core.submit_body),
-- when it needs only the core model's check: not started (so no policy
-- runs), no estimator. The job comes back as submit's answer = "json" one.
-- false: the text is for p:submit with its decoded table (a document
-- beyond the common shape, or with a problem, which that path names).
-- opts: owner.
function Pipeline:submit_body(text, opts)
  local submit_body = self.core.submit_body
  if not submit_body or self.estimator or type(text) ~= "string" then return false end
  local stored, err, code = submit_body(text, opts.owner, self.body_opts)
  if stored == nil then return nil, M.core_failure(err, code) end
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
  -- A job created without start whose images are not in the store yet is
  -- pulled now and started after, as a submit with start would be; a
  -- second start while its pull runs is answered with the job as it waits.
  if not decision.reject and self.images and job.state == "created" then
    local pulling = self.images.waiting(id)
    local pulls = not pulling and images_to_pull(self, job)
    if pulls then
      self:pull_then_start(id, pulls, opts)
      pulling = self.images.waiting(id)
    end
    if pulling then
      job.waiting = { reason = "Pulling", message = pulling }
      return job
    end
  end
  local started
  for _ = 1, STOPPING_TRIES do
    started, err, code = self.core.start(id, decision)
    if started or code ~= "CONFLICT" or not tostring(err):find("still stopping", 1, true) then break end
    -- Required here: the rock's plain-Lua users of this module may lack luv.
    require("jobrt.async").sleep(STOPPING_WAIT)
  end
  if not started then return nil, M.core_failure(err, code) end
  self:note(started, decision, why)
  if decision.held then started = self.core.get(id) or started end
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
