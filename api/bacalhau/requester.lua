-- The requester endpoints, each at /requester/X and /api/v1/requester/X:
-- submit, cancel, approve (signed), list, states, results, events, and the
-- logs WebSocket. A job's owner is its client ("bacalhau:<ClientID>"), so
-- the native API shows whose it is.
local core = require("jobrt.core")
local json = require("jobrt.json")
local async = require("jobrt.async")
local envelope = require("api.bacalhau.envelope")
local payload = require("api.bacalhau.payload")
local spec_mod = require("api.bacalhau.spec")
local view = require("api.bacalhau.view")
local results = require("api.bacalhau.results")

local M = {}

local OWNER_PREFIX = "bacalhau:"
local LIST_DEFAULT, LIST_MAX = 10, 1000
-- How many of a client's jobs list reads to sort and filter them: the
-- newest this many (a client with more sees those).
local LIST_SCAN_MAX = 10000
local OUTPUT_MAX = 4096 -- bytes of stdout/stderr a RunOutput carries
local LOG_PAGE = 1000
local FOLLOW_POLL = 0.2 -- seconds between looks for new lines while following

--- mount(ctx) -> what the route files share: the options, the node, the
-- publishers (loaded now, so a broken one stops start-up).
function M.mount(ctx)
  local cfg = ctx.config or {}
  local approvers = {}
  for _, id in ipairs(cfg.approvers or {}) do approvers[id:lower()] = true end
  local publishers = {}
  for name, plugin_name in pairs(cfg.publishers or {}) do
    local mod, opts = ctx.plugin(plugin_name)
    if not mod then error(string.format("bacalhau publisher %s: %s", name, tostring(opts)), 0) end
    if type(mod) ~= "table" or type(mod.publish) ~= "function" then
      error(string.format("bacalhau publisher %s: the plugin %s must return {publish = function(job, task, files, ctx)}",
        name, plugin_name), 0)
    end
    publishers[name:lower()] = { mod = mod, options = opts or {}, plugin = plugin_name,
      publication = require("jobrt.publication").new({ name = plugin_name, mod = mod, options = opts or {},
                                                       core = core, log = ctx.log }) }
  end
  local defaults = { cpu = cfg.task_cpu, memory = cfg.task_memory, timeout = cfg.task_timeout }
  return {
    ctx = ctx,
    cfg = cfg,
    approvers = approvers,
    publishers = publishers,
    defaults = defaults,
    node = { id = cfg.node_id or "jobrt", labels = cfg.node_labels or {} },
    to_job_opts = {
      images = ctx.sandbox.images, host_paths = ctx.sandbox.allow_host_paths, wasm = cfg.wasm,
      resolve_image = ctx.images and ctx.images.resolve,
      defaults = defaults, node_labels = cfg.node_labels or {},
    },
  }
end

-- Register a requester route at both prefixes.
local function both(r, method, name, handler)
  r:add(method, "/" .. name, handler)
  r:root(method, "/api/v1/requester/" .. name, handler)
end

local function fail(ctx, err)
  local status = err.status or 400
  local code = status == 401 and "Unauthorized" or status == 404 and "NotFound" or "BadRequest"
  ctx.fail(status, code, err.message or "invalid request")
end

-- The job id, as Bacalhau's job; 404 for another surface's.
local function bacalhau_job(ctx, id)
  local job = type(id) == "string" and id ~= "" and core.get(id) or nil
  if not job or job.surface ~= "bacalhau" then
    ctx.fail(404, "NotFound", string.format("Job not found. ID: %s", tostring(id)))
  end
  return job
end

-- The request body of an unsigned endpoint, decoded as Bacalhau would.
local function request_of(ctx, req, kind)
  local q, err = payload.read(kind, req.body or "")
  if not q then fail(ctx, err) end
  return q
end

local function run_output(job, task)
  if task.state ~= "succeeded" and task.state ~= "failed" and task.state ~= "canceled" then return nil end
  local stdout, out_trunc, stderr, err_trunc = results.output_of(job, task, OUTPUT_MAX)
  local exit_code = task.exit_code
  if task.outcome == "oom" or (task.signal == 9 and not exit_code) then exit_code = 137 end
  return {
    stdout = stdout, stdouttruncated = out_trunc, stderr = stderr, stderrtruncated = err_trunc,
    exitCode = exit_code or (task.state == "succeeded" and 0 or -1),
    runnerError = task.state == "failed" and (task.error or "") or "",
  }
end

function M.routes(r, s)
  local ctx, node = s.ctx, s.node

  local function state_of(req, job)
    return view.state(job, node, function(task)
      return run_output(job, task), results.published(s, req, job, task)
    end)
  end

  both(r, "POST", "submit", function(req, res)
    if req.headers["x-bacalhau-job-id"] then
      ctx.fail(400, "BadRequest", "a submit must not carry an X-Bacalhau-Job-ID header: the requester names the job")
    end
    local p, info = envelope.open(req.body, "submit")
    if not p then fail(ctx, info) end
    local job, publisher = spec_mod.to_job(p.Spec, s.to_job_opts)
    if not job then fail(ctx, publisher) end
    publisher = results.check_publisher(s, publisher)
    job.doc = {
      APIVersion = p.APIVersion, ClientID = info.client_id, Publisher = publisher,
      Spec = spec_mod.emit(p.Spec, p.APIVersion, s.defaults),
    }
    local stored = ctx.submit(job, { req = req, owner = OWNER_PREFIX .. info.client_id, start = true })
    res:header("X-Bacalhau-Job-ID", stored.id)
    res:header("X-Bacalhau-Client-ID", info.client_id)
    res:json({ job = view.job(stored, node) })
  end)

  both(r, "POST", "cancel", function(req, res)
    local p, info = envelope.open(req.body, "cancel")
    if not p then fail(ctx, info) end
    local job = bacalhau_job(ctx, p.JobID)
    if view.client_id(job) ~= info.client_id then
      ctx.fail(401, "Unauthorized", string.format(
        "mismatched ClientIDs for cancel: job %s belongs to another client than %s", job.id, info.client_id))
    end
    res:header("X-Bacalhau-Job-ID", job.id)
    res:header("X-Bacalhau-Client-ID", info.client_id)
    if view.is_terminal(job) then
      ctx.fail(400, "BadRequest", string.format("job %s is already in a terminal state (%s)", job.id,
        view.job_state(job)))
    end
    local reason = type(p.Reason) == "string" and p.Reason ~= "" and p.Reason or "cancelled by the client"
    ctx.check(core.cancel(job.id, reason))
    ctx.check(core.log(job.id, { level = "info", message = "cancelled by " .. info.client_id .. ": " .. reason }))
    res:json({ state = state_of(req, ctx.check(core.get(job.id))) })
  end)

  both(r, "POST", "approve", function(req, res)
    local p, info = envelope.open(req.body, "approve")
    if not p then fail(ctx, info) end
    if not s.approvers[info.client_id] then
      ctx.fail(401, "Unauthorized", string.format(
        "approval submitted by unknown client %s (surfaces.bacalhau.approvers)", info.client_id))
    end
    local job = bacalhau_job(ctx, p.JobID)
    res:header("X-Bacalhau-Job-ID", job.id)
    res:header("X-Bacalhau-Client-ID", info.client_id)
    if job.state ~= "awaiting_approval" then
      ctx.fail(400, "BadRequest", string.format("job %s is not waiting for approval (it is %s)", job.id,
        view.job_state(job)))
    end
    local resp = p.Response or {}
    if resp.shouldBid then
      ctx.approve(job.id, { accept = true, reason = resp.reason, by = info.client_id })
    elseif not resp.shouldWait then
      local reason = type(resp.reason) == "string" and resp.reason ~= "" and resp.reason or "rejected by an approver"
      ctx.approve(job.id, { accept = false, reason = "job rejected: " .. reason, by = info.client_id })
    end
    res:send("", 200)
  end)

  both(r, "POST", "list", function(req, res)
    local q = request_of(ctx, req, "list")
    local max = q.max_jobs and q.max_jobs > 0 and math.min(q.max_jobs, LIST_MAX) or LIST_DEFAULT
    local filter = { surface = "bacalhau", limit = LIST_MAX }
    if not q.return_all then
      if not q.client_id or q.client_id == "" then
        ctx.fail(400, "BadRequest", "list: client_id is required unless return_all is true")
      end
      filter.owner = OWNER_PREFIX .. q.client_id:lower()
    end
    local include, exclude = {}, {}
    for _, t in ipairs(q.include_tags or {}) do include[#include + 1] = t end
    for _, t in ipairs(q.exclude_tags or {}) do exclude[t] = true end
    local function wanted(job)
      if q.id and q.id ~= "" and job.id:sub(1, #q.id) ~= q.id then return false end
      local labels = job.labels or {}
      for _, t in ipairs(include) do if labels[t] == nil then return false end end
      for t in pairs(exclude) do if labels[t] ~= nil then return false end end
      return true
    end
    local found, seen = {}, 0
    repeat
      local page = ctx.check(core.list(filter))
      for _, job in ipairs(page.jobs) do
        seen = seen + 1
        if wanted(job) then found[#found + 1] = job end
      end
      filter.after = page.next
    until not page.next or seen >= LIST_SCAN_MAX
    local key = q.sort_by == "id" and "id" or "created_at"
    table.sort(found, function(a, b)
      local x, y = tostring(a[key]), tostring(b[key])
      if x == y then x, y = a.id, b.id end
      if q.sort_reverse then return x > y end
      return x < y
    end)
    local jobs = {}
    for i = 1, math.min(max, #found) do
      local job = ctx.check(core.get(found[i].id))
      jobs[i] = { Job = view.job(job, node), State = state_of(req, job) }
    end
    res:json({ jobs = json.array(jobs) })
  end)

  both(r, "POST", "states", function(req, res)
    local q = request_of(ctx, req, "states")
    local job = bacalhau_job(ctx, q.job_id)
    res:json({ state = state_of(req, job) })
  end)

  both(r, "POST", "results", function(req, res)
    local q = request_of(ctx, req, "results")
    local job = bacalhau_job(ctx, q.job_id)
    res:json({ results = results.list(s, req, job) })
  end)

  both(r, "POST", "events", function(req, res)
    local q = request_of(ctx, req, "events")
    local job = bacalhau_job(ctx, q.job_id)
    local events = ctx.check(core.events(0, LOG_PAGE, job.id))
    res:json({ events = view.history(job, events, node, q.filters) })
  end)

  results.routes(r, s)

  -- Logs over a WebSocket: the first text message is a signed LogsPayload;
  -- then {"Tag": 1|2, "Data": line} frames (stdout, stderr), following the
  -- job while it runs when asked, and a close frame at the end.
  local function logs(req, res)
    local ws = res:websocket()
    local text = ws:receive(30)
    if not text then return ws:close(1008, "expected a signed LogsPayload as the first message") end
    local p, info = envelope.open(text, "logs")
    if not p then return ws:close(1008, info.message:sub(1, 120)) end
    local job = core.get(p.JobID or "")
    if not job or job.surface ~= "bacalhau" then return ws:close(1008, "job not found") end
    if view.client_id(job) ~= info.client_id then
      return ws:close(1008, "mismatched ClientIDs: the job belongs to another client")
    end
    local alias
    if p.ExecutionID and p.ExecutionID ~= "" then
      for _, t in ipairs(job.tasks or {}) do
        if view.execution_id(job, t) == p.ExecutionID then alias = t.alias end
      end
      if not alias then return ws:close(1008, "execution not found") end
    end
    local after
    if not p.WithHistory then
      local last = core.logs(job.id, { limit = 1, after = nil })
      -- Only lines from now on: skip to the newest stored line.
      while last and #last > 0 do
        after = last[#last].id
        last = core.logs(job.id, { limit = LOG_PAGE, after = after })
      end
    end
    local function send_new()
      for _ = 1, 1000 do
        local page = core.logs(job.id, { after = after, limit = LOG_PAGE })
        if not page or #page == 0 then return true end
        for _, l in ipairs(page) do
          if l.task and (alias == nil or l.task == alias) and (l.level == "info" or l.level == "warn") then
            local frame = json.encode({ Tag = l.level == "info" and 1 or 2, Data = l.message .. "\n" })
            if not ws:send(frame) then return false end
          end
        end
        after = page[#page].id
        if #page < LOG_PAGE then return true end
      end
      return true
    end
    if not send_new() then return end
    while p.Follow and ws:alive() do
      job = core.get(job.id)
      local done = not job or view.is_terminal(job)
      if not send_new() then return end
      if done then break end
      async.sleep(FOLLOW_POLL)
    end
    ws:close(1000, "")
  end
  both(r, "GET", "logs", logs)
end

return M
