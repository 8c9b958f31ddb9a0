-- Core jobs as Kuscia shows them: the job's state by Kuscia's name, each
-- Kuscia task's state and times from its parties' core tasks, per-party
-- status, an error message that says which party failed, and the job's
-- request echoed from its doc. Tables in the shapes of api/kuscia/proto.lua.
local json = require("jobrt.json")

local M = {}

local NULL = json.null

M.JOB_STATES = {
  created = "Pending", queued = "Pending", awaiting_approval = "AwaitingApproval",
  rejected = "ApprovalReject", running = "Running", succeeded = "Succeeded", failed = "Failed",
  canceled = "Cancelled", suspended = "Suspended",
}

-- Kuscia's tasks know only these; a stopped party counts as failed, one
-- that never ran (skipped after a failure, stopped before it started) as
-- pending.
M.PARTY_STATES = {
  pending = "Pending", ready = "Pending", skipped = "Pending", running = "Running",
  succeeded = "Succeeded", failed = "Failed", canceled = "Failed",
}

local function str(v)
  if type(v) ~= "string" then return "" end
  return v
end

local function list(v)
  if type(v) ~= "table" or v == NULL then return {} end
  return v
end

--- view.job_state(job) -> Kuscia's name of the job's state.
function M.job_state(job)
  return M.JOB_STATES[job.state] or "Unknown"
end

--- view.time(rfc3339) -> the time as Kuscia writes it (whole seconds), "" for none.
function M.time(t)
  if type(t) ~= "string" or t == "" then return "" end
  return (t:gsub("%.%d+Z$", "Z"))
end

local function by_alias(job)
  local out = {}
  for _, t in ipairs(list(job.tasks)) do out[t.alias] = t end
  return out
end

-- One Kuscia task's status from its parties' core tasks; also the
-- failures, as {domain, message}, for the job's message.
local function task_status(dt, tasks)
  local states, parties, failures = {}, json.array({}), {}
  local started, ended, created = nil, nil, false
  for j, alias in ipairs(list(dt.units)) do
    local ct = tasks[alias] or {}
    local p = list(dt.parties)[j] or {}
    local st = M.PARTY_STATES[ct.state] or "Pending"
    -- Stopped before it ever started: Kuscia never created it.
    if ct.state == "canceled" and not ct.started_at then st = "Pending" end
    states[st] = (states[st] or 0) + 1
    if ct.started_at then
      created = true
      if not started or ct.started_at < started then started = ct.started_at end
    end
    if ct.ended_at and (not ended or ct.ended_at > ended) then ended = ct.ended_at end
    local msg = st == "Failed" and str(ct.error) or ""
    if st == "Failed" then
      created = true
      if msg ~= "" then
        failures[#failures + 1] = { domain = str(p.domain_id), message = msg, stopped = ct.state == "canceled" }
      end
    end
    parties[#parties + 1] = { domain_id = str(p.domain_id), state = st, err_msg = msg, endpoints = {} }
  end
  local n = #list(dt.units)
  local state = "Pending"
  if states.Failed then
    state = "Failed"
  elseif n > 0 and states.Succeeded == n then
    state = "Succeeded"
  elseif states.Running or states.Succeeded then
    state = "Running"
  end
  local errs = {}
  for _, f in ipairs(failures) do errs[#errs + 1] = f.domain .. ": " .. f.message end
  local done = state == "Succeeded" or state == "Failed"
  return {
    task_id = str(dt.task_id), state = state, err_msg = table.concat(errs, "; "),
    create_time = M.time(started), start_time = M.time(started), end_time = done and M.time(ended) or "",
    -- A Kuscia task has no party status until it was created.
    parties = created and parties or json.array({}),
    alias = str(dt.alias), progress = state == "Succeeded" and 1 or 0,
  }, failures
end

-- The hosted domains of the job, in the order its tasks name them.
local function domains_of(doc)
  local seen, out = {}, {}
  for _, dt in ipairs(list(doc.tasks)) do
    for _, p in ipairs(list(dt.parties)) do
      if type(p.domain_id) == "string" and not seen[p.domain_id] then
        seen[p.domain_id] = true
        out[#out + 1] = p.domain_id
      end
    end
  end
  return out
end

--- view.status_detail(job) -> JobStatusDetail
function M.status_detail(job)
  local doc = type(job.doc) == "table" and job.doc or {}
  local tasks = by_alias(job)
  local statuses, failures = json.array({}), {}
  for _, dt in ipairs(list(doc.tasks)) do
    local ts, failed = task_status(dt, tasks)
    statuses[#statuses + 1] = ts
    for _, f in ipairs(failed) do
      if not f.stopped then
        failures[#failures + 1] = string.format("Task[%s]-Party[%s]: %s", str(dt.alias), f.domain, f.message)
      end
    end
  end
  local state = M.job_state(job)
  local err = str(job.error)
  if state == "Failed" and #failures > 0 then
    -- Which party failed and why, rather than the core's own summary (a
    -- stopped job's parties did not fail: its message is the stop's reason).
    err = table.concat(failures, "; ")
  elseif (state == "ApprovalReject" or state == "AwaitingApproval") and err == "" and type(job.approval) == "table" then
    -- Rejected: why; awaiting: what the policy holding it waits for.
    err = str(job.approval.reason)
  end
  local approvals = json.array({})
  local decision = type(job.approval) == "table" and job.approval.decision or nil
  if decision == "accept" or decision == "reject" then
    for _, d in ipairs(domains_of(doc)) do
      approvals[#approvals + 1] = { domain_id = d, state = decision == "accept" and "JobAccepted" or "JobRejected" }
    end
  end
  local ended = state ~= "Running" and state ~= "Pending" and state ~= "Suspended"
    and state ~= "AwaitingApproval"
  return {
    state = state, err_msg = err, create_time = M.time(job.created_at), start_time = M.time(job.started_at),
    end_time = ended and M.time(job.ended_at) or "", tasks = statuses, stage_status_list = json.array({}),
    approve_status_list = approvals,
  }
end

--- view.job_status(job) -> JobStatus: {job_id, status}
function M.job_status(job)
  return { job_id = job.id, status = M.status_detail(job) }
end

local function task_config(dt)
  local parties = json.array({})
  for j, p in ipairs(list(dt.parties)) do
    -- Kuscia's query echoes a party's domain, role and bandwidth limits,
    -- never its resources (those are the pods' business).
    parties[j] = {
      domain_id = str(p.domain_id), role = str(p.role), bandwidth_limits = list(p.bandwidth_limits),
    }
  end
  local sc = type(dt.schedule_config) == "table" and dt.schedule_config or nil
  return {
    app_image = str(dt.app_image), parties = parties, alias = str(dt.alias), task_id = str(dt.task_id),
    dependencies = list(dt.dependencies), task_input_config = str(dt.task_input_config),
    priority = math.tointeger(dt.priority) or 0, schedule_config = sc,
  }
end

--- view.query(job) -> QueryJobResponseData
function M.query(job)
  local doc = type(job.doc) == "table" and job.doc or {}
  local configs = json.array({})
  for i, dt in ipairs(list(doc.tasks)) do configs[i] = task_config(dt) end
  local fields = type(doc.custom_fields) == "table" and doc.custom_fields ~= NULL and doc.custom_fields or {}
  return {
    job_id = job.id, initiator = str(doc.initiator), max_parallelism = math.tointeger(doc.max_parallelism) or 1,
    tasks = configs, status = M.status_detail(job), custom_fields = fields,
  }
end

return M
