-- api.kuscia.view, encode and the watch feed: core jobs as Kuscia's
-- JobStatusDetail and query data, the two encodings (every default for the
-- API, Go's omitempty for watch), and watch frames rendered once per event.
local view = require("api.kuscia.view")
local encode = require("api.kuscia.encode")
local watch = require("api.kuscia.watch")
local json = require("jobrt.json")

local function doc()
  return {
    initiator = "alice", max_parallelism = 2, custom_fields = { team = "a" },
    tasks = {
      { alias = "psi", task_id = "psi-1", app_image = "img", task_input_config = "{}", priority = 100,
        dependencies = {}, units = { "psi.alice", "psi.bob" },
        parties = { { domain_id = "alice", role = "guest", bandwidth_limits = {} },
                    { domain_id = "bob", role = "host", bandwidth_limits = { { destination_id = "alice", limit_kbps = 1000 } },
                      resources = { cpu = "2", memory = "1G", bandwidth = "" } } } },
      { alias = "train", task_id = "train-1", app_image = "img", task_input_config = "", priority = 0,
        dependencies = { "psi" }, units = { "train.bob" }, tolerable = true,
        schedule_config = { task_timeout_seconds = 300, resource_reserved_seconds = 30,
                            resource_reallocation_interval_seconds = 30 },
        parties = { { domain_id = "bob", role = "", bandwidth_limits = {} } } },
    },
  }
end

local function job(state, tasks, extra)
  local j = { id = "job-1", surface = "kuscia", state = state, created_at = "2026-12-04T05:00:00.123Z",
              started_at = "2026-12-04T05:00:01.500Z", ended_at = "2026-12-04T05:00:09.999Z",
              doc = doc(), tasks = tasks or {} }
  for k, v in pairs(extra or {}) do j[k] = v end
  return j
end

local function ct(alias, state, extra)
  local t = { alias = alias, state = state }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

return {
  { "job states in Kuscia's names", function(t)
    local want = { created = "Pending", queued = "Pending", awaiting_approval = "AwaitingApproval",
      rejected = "ApprovalReject", running = "Running", succeeded = "Succeeded", failed = "Failed",
      canceled = "Cancelled", suspended = "Suspended", deleting = "Unknown" }
    for core_state, name in pairs(want) do t.eq(view.job_state(job(core_state)), name, core_state) end
    t.eq(view.time("2026-12-04T05:00:00.123Z"), "2026-12-04T05:00:00Z")
    t.eq(view.time(nil), "")
  end },

  { "tasks from their parties: states, times, parties once created, the failures", function(t)
    local running = view.status_detail(job("running", {
      ct("psi.alice", "succeeded", { started_at = "2026-12-04T05:00:02Z", ended_at = "2026-12-04T05:00:04Z" }),
      ct("psi.bob", "running", { started_at = "2026-12-04T05:00:01.9Z" }),
      ct("train.bob", "pending"),
    }))
    t.eq(running.state, "Running")
    t.eq({ running.create_time, running.start_time, running.end_time }, { "2026-12-04T05:00:00Z", "2026-12-04T05:00:01Z", "" })
    local psi, train = running.tasks[1], running.tasks[2]
    t.eq({ psi.task_id, psi.alias, psi.state, psi.start_time, psi.create_time, psi.end_time, psi.progress },
      { "psi-1", "psi", "Running", "2026-12-04T05:00:01Z", "2026-12-04T05:00:01Z", "", 0 })
    t.eq(psi.parties, {
      { domain_id = "alice", state = "Succeeded", err_msg = "", endpoints = {} },
      { domain_id = "bob", state = "Running", err_msg = "", endpoints = {} } })
    t.eq({ train.state, train.parties, train.start_time }, { "Pending", {}, "" })

    local failed = view.status_detail(job("failed", {
      ct("psi.alice", "succeeded", { started_at = "2026-12-04T05:00:02Z", ended_at = "2026-12-04T05:00:04Z" }),
      ct("psi.bob", "failed", { started_at = "2026-12-04T05:00:02Z", ended_at = "2026-12-04T05:00:05Z",
                                error = "exit code 3" }),
      ct("train.bob", "skipped"),
    }, { error = "task 'psi.bob' failed: exit code 3" }))
    t.eq(failed.state, "Failed")
    t.eq(failed.err_msg, "Task[psi]-Party[bob]: exit code 3", "the parties that failed, not the core's summary")
    t.eq(failed.end_time, "2026-12-04T05:00:09Z")
    t.eq({ failed.tasks[1].state, failed.tasks[1].err_msg, failed.tasks[1].end_time },
      { "Failed", "bob: exit code 3", "2026-12-04T05:00:05Z" })
    t.eq(failed.tasks[2].state, "Pending")

    -- Stopped: the reason is the message; stopped parties failed, those never started pending.
    local stopped = view.status_detail(job("failed", {
      ct("psi.alice", "canceled", { started_at = "2026-12-04T05:00:02Z", ended_at = "2026-12-04T05:00:03Z",
                                    error = "canceled" }),
      ct("psi.bob", "canceled"), ct("train.bob", "canceled"),
    }, { error = "stopped by the operator" }))
    t.eq(stopped.err_msg, "stopped by the operator")
    t.eq(stopped.tasks[1].err_msg, "alice: canceled")
    t.eq({ stopped.tasks[1].state, stopped.tasks[2].state, #stopped.tasks[2].parties }, { "Failed", "Pending", 0 })
    t.eq(stopped.tasks[1].parties[2].state, "Pending")

    local done = view.status_detail(job("succeeded", {
      ct("psi.alice", "succeeded", { started_at = "2026-12-04T05:00:02Z", ended_at = "2026-12-04T05:00:04Z" }),
      ct("psi.bob", "succeeded", { started_at = "2026-12-04T05:00:02Z", ended_at = "2026-12-04T05:00:06Z" }),
      ct("train.bob", "succeeded", { started_at = "2026-12-04T05:00:07Z", ended_at = "2026-12-04T05:00:08Z" }),
    }))
    t.eq({ done.tasks[1].state, done.tasks[1].end_time, done.tasks[1].progress }, { "Succeeded", "2026-12-04T05:00:06Z", 1 })
    t.eq(done.err_msg, "")
  end },

  { "approval: the reason of a rejection, each domain's decision", function(t)
    local rejected = view.status_detail(job("rejected", {}, { error = "not today",
      approval = { decision = "reject", by = "ops", reason = "not today" } }))
    t.eq(rejected.state, "ApprovalReject")
    t.eq(rejected.err_msg, "not today")
    t.eq(rejected.approve_status_list, { { domain_id = "alice", state = "JobRejected" },
                                         { domain_id = "bob", state = "JobRejected" } })
    local accepted = view.status_detail(job("running", {}, { approval = { decision = "accept" } }))
    t.eq(accepted.approve_status_list[1], { domain_id = "alice", state = "JobAccepted" })
    t.eq(view.status_detail(job("awaiting_approval")).approve_status_list, {})
    t.eq(view.status_detail(job("awaiting_approval")).end_time, "")
  end },

  { "query echoes the request as Kuscia stored it, without the parties' resources", function(t)
    local q = view.query(job("running"))
    t.eq({ q.job_id, q.initiator, q.max_parallelism, q.custom_fields }, { "job-1", "alice", 2, { team = "a" } })
    t.eq(q.tasks[1], {
      app_image = "img", alias = "psi", task_id = "psi-1", dependencies = {}, task_input_config = "{}",
      priority = 100, schedule_config = nil,
      -- resources are not echoed, as Kuscia's query does not
      parties = { { domain_id = "alice", role = "guest", bandwidth_limits = {} },
                  { domain_id = "bob", role = "host", bandwidth_limits = { { destination_id = "alice", limit_kbps = 1000 } } } },
    })
    t.eq(q.tasks[2].schedule_config.task_timeout_seconds, 300)
  end },

  { "the API's encoding: every field, in order, 64-bit integers as strings, unset messages null", function(t)
    t.eq(encode.proto("JobIdResponse", { status = { code = 11100, message = "bad <x>", details = {} } }),
      '{"status":{"code":11100,"message":"bad <x>","details":[]},"data":null}')
    t.eq(encode.proto("JobIdResponse", { status = { code = 0, message = "success" }, data = { job_id = "j" } }),
      '{"status":{"code":0,"message":"success","details":[]},"data":{"job_id":"j"}}')
    t.eq(encode.proto("Party", { domain_id = "bob", bandwidth_limits = { { destination_id = "a", limit_kbps = 1000 } } }),
      '{"domain_id":"bob","role":"","resources":null,"bandwidth_limits":[{"destination_id":"a","limit_kbps":"1000"}]}')
    local text = encode.proto("QueryJobResponse", { status = { code = 0, message = "success" }, data = view.query(job("queued")) })
    local back = json.decode(text)
    t.eq(back.data.status.state, "Pending")
    t.eq(back.data.tasks[2].schedule_config.resource_reserved_seconds, 30)
    t.eq(back.data.tasks[1].schedule_config, json.null)
    t.eq(back.data.status.tasks[1], { task_id = "psi-1", state = "Pending", err_msg = "", create_time = "",
      start_time = "", end_time = "", parties = {}, alias = "psi", progress = 0 })
    t.ok(text:find('"custom_fields":{"team":"a"}}}$'), "custom_fields last, as declared")
    t.ok(text:find('^{"status":{"code":0,"message":"success","details":%[%]},"data":{"job_id":"job%-1","initiator":"alice",'
      .. '"max_parallelism":2,"tasks":%[{"app_image":"img","parties":%['), "proto order")
  end },

  { "watch's encoding: Go's omitempty, numeric type, ADDED without one, HTML escaped", function(t)
    local status = { job_id = "j", status = { state = "Failed", err_msg = "a<b & c>d", create_time = "t",
      start_time = "", end_time = "", tasks = { { task_id = "x", state = "Pending", parties = {}, progress = 0 } },
      stage_status_list = {}, approve_status_list = {} } }
    t.eq(encode.go("WatchJobEventResponse", { type = 1, object = status }),
      '{"type":1,"object":{"job_id":"j","status":{"state":"Failed","err_msg":"a\\u003cb \\u0026 c\\u003ed",'
        .. '"create_time":"t","tasks":[{"task_id":"x","state":"Pending"}]}}}')
    t.eq(encode.go("WatchJobEventResponse", { type = 0, object = { job_id = "j" } }), '{"object":{"job_id":"j"}}')
    t.eq(encode.go("WatchJobEventResponse", { type = 4 }), watch.HEARTBEAT_FRAME)
  end },

  { "the feed renders each event once for every watcher, Kuscia's jobs only", function(t)
    local jobs = { ["job-1"] = job("running"), other = { id = "other", surface = "native", state = "running" } }
    local gets = 0
    local feed = watch.feed(function(id) gets = gets + 1 return jobs[id] end, "kuscia")
    local ev = { seq = 10, job = "job-1", type = "task", state = "running" }
    local a = feed:frame(ev)
    local b = feed:frame({ seq = 10, job = "job-1", type = "task", state = "running" })
    t.ok(a == b, "the same frame")
    t.eq({ gets, feed.rendered }, { 1, 1 })
    t.match(a.text, '^{"type":1,"object":{"job_id":"job%-1","status":{"state":"Running"')
    t.eq(a.job, "job-1")
    t.eq(a.text, '{"type":1,"object":' .. a.object .. "}")
    t.eq(feed:frame({ seq = 11, job = "other", type = "job", state = "running" }), false)
    t.eq(feed:frame({ seq = 12, job = "job-1", type = "log" }), false)
    local added = feed:frame({ seq = 13, job = "job-1", type = "job", state = "created", message = "submitted" })
    t.match(added.text, '^{"object":{"job_id":"job%-1"')
    -- Deleted: the job as it was last shown.
    jobs["job-1"] = nil
    local del = feed:frame({ seq = 14, job = "job-1", type = "deleted" })
    t.match(del.text, '^{"type":2,"object":{"job_id":"job%-1","status":{"state":"Running"')
    t.eq(del.object, nil)
    t.eq(feed:frame({ seq = 15, job = "gone", type = "deleted" }), false)
    -- ADDED frames of settled jobs are kept for the watchers that start later.
    local done = job("succeeded", { ct("psi.alice", "succeeded") }, { id = "job-2", updated_at = "u1" })
    local f1 = feed:added(done)
    t.ok(feed:added_row({ id = "job-2", state = "succeeded", updated_at = "u1" }) == f1)
    t.eq(feed:added_row({ id = "job-2", state = "succeeded", updated_at = "u2" }), nil, "changed since")
    t.eq(feed:added_row({ id = "job-2", state = "running", updated_at = "u1" }), nil)
    feed:added(job("running", {}, { id = "job-3", updated_at = "u1" }))
    t.eq(feed:added_row({ id = "job-3", state = "running", updated_at = "u1" }), nil, "a live job is rendered")
    feed:added(job("failed", { ct("psi.alice", "running") }, { id = "job-4", updated_at = "u1" }))
    t.eq(feed:added_row({ id = "job-4", state = "failed", updated_at = "u1" }), nil, "its tasks still stopping")
    feed:frame({ seq = 16, job = "job-2", type = "deleted" })
    t.eq(feed:added_row({ id = "job-2", state = "succeeded", updated_at = "u1" }), nil, "forgotten when deleted")
    -- Only the last SPAN frames are kept; an older event is rendered again.
    for seq = 17, 17 + watch.SPAN do feed:frame({ seq = seq, job = "other", type = "task" }) end
    t.eq(feed.frames[10], nil)
    t.ok(feed.frames[17 + watch.SPAN] == false)
    local n = 0
    for _ in pairs(feed.frames) do n = n + 1 end
    t.eq(n, watch.SPAN)
  end },
}
