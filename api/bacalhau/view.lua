-- Core jobs as Bacalhau's legacy API shows them: Job, JobWithInfo,
-- JobState with one ExecutionState per task, JobHistory events. A job's
-- document (`doc`) holds what the client sent (APIVersion, ClientID, the
-- Spec as echoed), so it reads back the way it was submitted; states come
-- from the core job. Names are the same in v1.0 and v1.1 for these enums.
local json = require("jobrt.json")

local M = {}

local NULL = json.null

-- Core job states -> JobStateType names. A job a policy holds is Queued
-- (Bacalhau's "waiting for approval"); one queued for resources is
-- already InProgress, as a Bacalhau job is once nodes are asked to bid.
M.JOB_STATES = {
  created = "New", awaiting_approval = "Queued", suspended = "Queued", queued = "InProgress",
  running = "InProgress", succeeded = "Completed", failed = "Error", rejected = "Error",
  canceled = "Cancelled",
}

-- Core task states -> ExecutionStateType names.
M.EXECUTION_STATES = {
  pending = "AskForBidAccepted", ready = "AskForBidAccepted", running = "BidAccepted",
  succeeded = "Completed", failed = "Failed", canceled = "Cancelled", skipped = "Cancelled",
}

local TERMINAL = { Completed = true, Error = true, Cancelled = true }

function M.job_state(job) return M.JOB_STATES[job.state] or "Undefined" end

function M.is_terminal(job) return TERMINAL[M.job_state(job)] == true end

-- RFC 3339 with nanoseconds, as Go's time.Time marshals (UTC).
function M.time(t)
  if type(t) ~= "string" or t == "" then return "0001-01-01T00:00:00Z" end
  local base, frac = t:match("^(%d+%-%d+%-%d+T%d+:%d+:%d+)%.?(%d*)Z$")
  if not base then return t end
  if frac == "" then return base .. "Z" end
  return base .. "." .. frac .. "Z"
end

-- Unix seconds of an RFC 3339 time the core wrote (UTC), or 0.
function M.unix(t)
  local y, mo, d, h, mi, s = tostring(t):match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)")
  if not y then return 0 end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y, mo = y - 1, mo + 12 end
  local days = 365 * y + y // 4 - y // 100 + y // 400 + (153 * (mo - 3) + 2) // 5 + tonumber(d) - 719469
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

--- view.execution_id(job, task) -> the ComputeReference of a task's run
function M.execution_id(job, task)
  return "e-" .. job.id .. "-" .. task.alias
end

local function doc_of(job)
  return type(job.doc) == "table" and job.doc or {}
end

--- view.client_id(job) -> the ClientID that submitted the job
function M.client_id(job)
  return doc_of(job).ClientID
end

--- view.job(job, node) -> Bacalhau's Job document
function M.job(job, node)
  local doc = doc_of(job)
  return {
    APIVersion = doc.APIVersion or "V1beta1",
    Metadata = {
      ID = job.id,
      CreatedAt = M.time(job.created_at),
      ClientID = doc.ClientID or "",
      Requester = { RequesterNodeID = node.id, RequesterPublicKey = node.public_key or "" },
    },
    Spec = doc.Spec or json.object({}),
  }
end

-- A task's message in Bacalhau's words: what ended it, distinctly for a
-- memory limit, a timeout and a cancel (Bacalhau issues #1270, #3534).
local function status_of(job, task)
  local outcome, err = task.outcome, task.error
  if task.state == "succeeded" then return "" end
  if outcome == "oom" then
    return "out of memory: " .. tostring(err or "the memory limit was exceeded") ..
      " (exit code 137); ask for more with Resources.Memory"
  elseif outcome == "timeout" then
    return "timed out: " .. tostring(err or "the timeout passed") .. "; raise Spec.Timeout"
  elseif task.state == "canceled" then
    return job.error and job.error ~= "" and ("cancelled: " .. job.error) or "cancelled"
  elseif task.state == "skipped" then
    return "not run: " .. tostring(err or "an earlier task failed")
  elseif task.state == "failed" then
    return tostring(err or "failed")
  end
  if job.state == "awaiting_approval" then
    -- The policy's own reason, when the job records one.
    local a = type(job.approval) == "table" and job.approval or {}
    if a.decision == "wait" and type(a.reason) == "string" and a.reason ~= "" then
      return "waiting for approval: " .. a.reason
    end
    return "waiting for approval"
  end
  -- The job ended while this task still runs: its process is being stopped.
  if TERMINAL[M.job_state(job)] and task.state == "running" then
    return job.state == "canceled" and "stopping: the job was cancelled" or "stopping: the job ended"
  end
  return ""
end

--- view.execution(job, task, node, extra) -> ExecutionState. extra:
-- run_output (RunCommandResult), published (StorageSpec), desired (v1.1).
function M.execution(job, task, node, extra)
  extra = extra or {}
  local state = M.EXECUTION_STATES[task.state] or "New"
  if job.state == "awaiting_approval" then state = "AskForBid" end
  local e = {
    JobID = job.id,
    NodeId = node.id,
    ComputeReference = M.execution_id(job, task),
    State = state,
    Status = status_of(job, task),
    VerificationProposal = json.array({}),
    VerificationResult = { Complete = task.state == "succeeded", Result = task.state == "succeeded" },
    PublishedResults = extra.published or json.object({}),
    RunOutput = extra.run_output or NULL,
    Version = (task.attempt or 0) + 1,
    CreateTime = M.time(job.created_at),
    UpdateTime = M.time(task.ended_at or task.started_at or job.updated_at),
  }
  if extra.v11 then
    local running = state == "BidAccepted" or state == "AskForBidAccepted" or state == "AskForBid"
    e.DesiredState = (running and not TERMINAL[M.job_state(job)]) and 1 or 2
  else
    e.AcceptedAskForBid = job.state ~= "awaiting_approval"
  end
  return e
end

-- v1.1 spelled the same JobState; only DesiredState is new.
local function is_v11(job)
  return doc_of(job).APIVersion == "V1beta2"
end

--- view.state(job, node, outputs_of) -> JobState. outputs_of(task) ->
-- run_output, published (either may be nil).
function M.state(job, node, outputs_of)
  local executions = {}
  local v11 = is_v11(job)
  if job.state ~= "rejected" and job.state ~= "created" then
    for _, task in ipairs(job.tasks or {}) do
      local run_output, published
      if outputs_of then run_output, published = outputs_of(task) end
      executions[#executions + 1] = M.execution(job, task, node,
        { run_output = run_output, published = published, v11 = v11 })
    end
  end
  local timeout_at = "0001-01-01T00:00:00Z"
  local t = job.tasks and job.tasks[1]
  if t and t.timeout and t.timeout > 0 and job.started_at then
    timeout_at = os.date("!%Y-%m-%dT%H:%M:%SZ", M.unix(job.started_at) + math.ceil(t.timeout))
  end
  return {
    JobID = job.id,
    Executions = json.array(executions),
    State = M.job_state(job),
    Version = (job.started_at and 1 or 0) + (job.ended_at and 1 or 0) + 1,
    CreateTime = M.time(job.created_at),
    UpdateTime = M.time(job.updated_at),
    TimeoutAt = timeout_at,
  }
end

--- view.history(job, events, node, filters) -> [JobHistory]. events are the
-- core's rows for the job, in order; filters as the events request gives them.
function M.history(job, events, node, filters)
  filters = filters or {}
  local out = {}
  local job_prev, task_prev = "New", {}
  local version = 0
  for _, ev in ipairs(events) do
    local at = M.unix(ev.time)
    if ev.type == "job" and ev.state then
      local new = M.JOB_STATES[ev.state] or "Undefined"
      version = version + 1
      if not filters.exclude_job_level and (not filters.since or at >= filters.since) then
        out[#out + 1] = {
          Type = "JobLevel", JobID = job.id, NodeID = node.id,
          JobState = { Previous = job_prev, New = new },
          NewVersion = version, Comment = ev.message or "", Time = M.time(ev.time),
        }
      end
      job_prev = new
    elseif ev.type == "task" and ev.task then
      local new = M.EXECUTION_STATES[ev.state] or "New"
      local exec_id = M.execution_id(job, { alias = ev.task })
      local prev = task_prev[ev.task] or "New"
      task_prev[ev.task] = new
      if not filters.exclude_execution_level and (not filters.since or at >= filters.since)
        and (not filters.execution_id or filters.execution_id == exec_id)
        and (not filters.node_id or filters.node_id == node.id) then
        out[#out + 1] = {
          Type = "ExecutionLevel", JobID = job.id, NodeID = node.id, ComputeReference = exec_id,
          ExecutionState = { Previous = prev, New = new },
          NewVersion = version, Comment = ev.message or "", Time = M.time(ev.time),
        }
      end
    end
  end
  return json.array(out)
end

return M
