-- api.bacalhau.view: core jobs as Bacalhau's JobState and JobHistory.
local view = require("api.bacalhau.view")

local NODE = { id = "node-1" }

local function job(state, tasks, extra)
  local j = { id = "j1", state = state, created_at = "2026-12-04T05:00:00.123Z",
              updated_at = "2026-12-04T05:00:02Z", tasks = tasks or {},
              doc = { APIVersion = "V1beta1", ClientID = "c" } }
  for k, v in pairs(extra or {}) do j[k] = v end
  return j
end

return {
  { "job states in Bacalhau's names", function(t)
    local want = { created = "New", awaiting_approval = "Queued", queued = "InProgress",
      running = "InProgress", succeeded = "Completed", failed = "Error", rejected = "Error",
      canceled = "Cancelled" }
    for core_state, name in pairs(want) do t.eq(view.job_state(job(core_state)), name, core_state) end
    t.ok(view.is_terminal(job("rejected")))
    t.ok(not view.is_terminal(job("awaiting_approval")))
  end },

  { "times: Go's RFC 3339 and unix seconds", function(t)
    t.eq(view.time("2026-12-04T05:00:00.123Z"), "2026-12-04T05:00:00.123Z")
    t.eq(view.time(nil), "0001-01-01T00:00:00Z")
    t.eq(view.unix("1970-01-01T00:00:10Z"), 10)
    t.eq(view.unix("2026-12-04T05:00:00Z"), os.time({ year = 2026, month = 12, day = 4, hour = 5, isdst = false })
      - os.time({ year = 1970, month = 1, day = 1, hour = 0, isdst = false }))
  end },

  { "executions say why they ended: OOM, timeout, cancel", function(t)
    local tasks = {
      { alias = "0", state = "failed", outcome = "oom", error = "memory limit of 67108864 bytes exceeded" },
      { alias = "1", state = "failed", outcome = "timeout", error = "timed out after 1s" },
      { alias = "2", state = "canceled", outcome = "canceled", error = "canceled" },
      { alias = "3", state = "succeeded", exit_code = 0 },
    }
    local st = view.state(job("canceled", tasks, { error = "no longer needed" }), NODE)
    t.eq(st.State, "Cancelled")
    t.eq(#st.Executions, 4)
    t.ok(st.Executions[1].Status:find("out of memory", 1, true), st.Executions[1].Status)
    t.ok(st.Executions[2].Status:find("timed out", 1, true), st.Executions[2].Status)
    t.eq(st.Executions[3].Status, "cancelled: no longer needed")
    t.eq(st.Executions[4].Status, "")
    t.eq(st.Executions[1].State, "Failed")
    t.eq(st.Executions[3].State, "Cancelled")
    t.eq(st.Executions[4].State, "Completed")
    t.eq(st.Executions[1].ComputeReference, "e-j1-0")
  end },

  { "a cancelled job's execution still stopping says so, and v1.1 wants it stopped", function(t)
    local running = { { alias = "0", state = "running" } }
    local e = view.state(job("canceled", running), NODE).Executions[1]
    t.eq({ e.State, e.Status }, { "BidAccepted", "stopping: the job was cancelled" })
    local v11 = job("canceled", running, { doc = { APIVersion = "V1beta2", ClientID = "c" } })
    t.eq(view.state(v11, NODE).Executions[1].DesiredState, 2)
    local live = job("running", running, { doc = { APIVersion = "V1beta2", ClientID = "c" } })
    t.eq({ view.state(live, NODE).Executions[1].DesiredState, view.state(live, NODE).Executions[1].Status },
      { 1, "" })
  end },

  { "a held job is Queued with executions asking for a bid; a rejected one has none", function(t)
    local st = view.state(job("awaiting_approval", { { alias = "0", state = "pending" } }), NODE)
    t.eq(st.State, "Queued")
    t.eq(st.Executions[1].State, "AskForBid")
    t.eq(st.Executions[1].Status, "waiting for approval")
    t.eq(#view.state(job("rejected", { { alias = "0", state = "pending" } }), NODE).Executions, 0)
  end },

  { "history: job and execution levels, with filters", function(t)
    local j = job("succeeded", { { alias = "0", state = "succeeded" } })
    local events = {
      { seq = 1, time = "2026-12-04T05:00:00Z", job = "j1", type = "job", state = "created", message = "submitted" },
      { seq = 2, time = "2026-12-04T05:00:01Z", job = "j1", type = "job", state = "queued" },
      { seq = 3, time = "2026-12-04T05:00:01Z", job = "j1", task = "0", type = "task", state = "running" },
      { seq = 4, time = "2026-12-04T05:00:02Z", job = "j1", task = "0", type = "task", state = "succeeded" },
      { seq = 5, time = "2026-12-04T05:00:02Z", job = "j1", type = "job", state = "succeeded" },
    }
    local h = view.history(j, events, NODE)
    t.eq(#h, 5)
    t.eq(h[1].Type, "JobLevel")
    t.eq(h[1].JobState, { Previous = "New", New = "New" })
    t.eq(h[1].Comment, "submitted")
    t.eq(h[3].Type, "ExecutionLevel")
    t.eq(h[3].ExecutionState, { Previous = "New", New = "BidAccepted" })
    t.eq(h[4].ExecutionState, { Previous = "BidAccepted", New = "Completed" })
    t.eq(h[5].JobState, { Previous = "InProgress", New = "Completed" })
    t.eq(#view.history(j, events, NODE, { exclude_execution_level = true }), 3)
    t.eq(#view.history(j, events, NODE, { exclude_job_level = true }), 2)
    t.eq(#view.history(j, events, NODE, { since = view.unix("2026-12-04T05:00:02Z") }), 2)
    t.eq(#view.history(j, events, NODE, { execution_id = "e-j1-9", exclude_job_level = true }), 0)
  end },
}
