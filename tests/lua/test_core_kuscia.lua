-- jobrt.core calls the Kuscia surface relies on: fail (a restartable stop),
-- task groups, deleting a job whose tasks still run.
local core = require("jobrt.core")

local function open(t, node)
  local dir = os.tmpname()
  os.remove(dir)
  t.ok(core.open({ data_dir = dir, node = node or { cpu = 2000, max_tasks = 4 }, kill_grace = 1 }))
  t.cleanup = function()
    core.close()
    os.execute("rm -rf '" .. dir .. "'")
  end
  return dir
end

local function wait_for(t, what, ms)
  for _ = 1, (ms or 5000) // 10 do
    local v = what()
    if v then return v end
    t.sleep(10)
  end
  return what()
end

return {
  { "fail: failed with the reason, restartable", function(t)
    open(t)
    local job = t.ok(core.submit({ id = "kf", tasks = {
      { alias = "a", command = "true" },
      { alias = "b", deps = { "a" }, command = "sleep 30" },
    } }, { start = true }))
    t.ok(job.state == "queued" or job.state == "running", job.state)
    t.ok(wait_for(t, function() return core.get("kf").tasks[2].state == "running" end))
    local failed, err = core.fail("kf", "stopped by alice")
    t.ok(failed, err)
    t.eq({ failed.state, failed.error }, { "failed", "stopped by alice" })
    local again, msg, code = core.fail("kf", "twice")
    t.eq({ again, code }, { nil, "CONFLICT" })
    t.match(msg, "cannot fail job 'kf'")
    local _, _, nf = core.fail("nope")
    t.eq(nf, "NOT_FOUND")
    t.ok(wait_for(t, function() return core.get("kf").tasks[2].state == "canceled" end))
    local restarted = t.ok(core.restart("kf"))
    t.eq(restarted.tasks[1].state, "succeeded")
  end },

  { "group: read at submit, stored, returned by get", function(t)
    open(t)
    local job = t.ok(core.submit({ id = "kg", max_parallelism = 1, tasks = {
      { alias = "t1-alice", group = "t1", command = "true" },
      { alias = "t1-bob", group = "t1", command = "true" },
      { alias = "t2", command = "true" },
    } }))
    t.eq({ job.tasks[1].group, job.tasks[2].group, job.tasks[3].group }, { "t1", "t1", nil })
    local got = t.ok(core.get("kg"))
    t.eq({ got.tasks[1].group, got.tasks[2].group, got.tasks[3].group }, { "t1", "t1", nil })
    local _, msg, code = core.submit({ tasks = { { alias = "x", group = 5, command = "true" } } })
    t.eq(code, "INVALID")
    t.match(msg, "tasks%[0%]%.group must be a string")
    local _, msg2, code2 = core.submit({ tasks = { { alias = "x", group = "a b", command = "true" } } })
    t.eq(code2, "INVALID")
    t.match(msg2, "group 'a b' is not valid")
    local model = require("jobrt.model")
    t.eq(model.MODEL.task.group, { type = "string" })
  end },

  { "delete with force: gone at once, removed once its tasks ended", function(t)
    local dir = open(t)
    t.ok(core.submit({ id = "kd", owner = "o", tasks = { { alias = "a", command = "sleep 30" } } },
      { start = true }))
    t.ok(wait_for(t, function() return core.get("kd").tasks[1].state == "running" end))
    local _, msg, code = core.delete("kd")
    t.eq(code, "LOCKED")
    t.match(msg, "stop it before deleting it")
    t.err(function() core.delete("kd", "force") end, "table or nil")
    t.eq(core.delete("kd", { force = true }), true)
    local _, _, nf = core.get("kd")
    t.eq(nf, "NOT_FOUND")
    t.eq(#core.list({}).jobs, 0)
    t.eq(core.count({ owner = "o" }), 0)
    local evs = core.events(0, 100, "kd")
    t.eq({ evs[#evs].type, evs[#evs].state }, { "deleted", nil })
    local _, busy, bcode = core.submit({ id = "kd" })
    t.eq(bcode, "CONFLICT")
    t.match(busy, "being deleted")
    local f = io.open(dir .. "/jobs/kd/a", "r")
    t.ok(f, "files stay while the task stops")
    if f then f:close() end
    t.ok(wait_for(t, function() return core.submit({ id = "kd" }) end))
    t.eq(core.get("kd").state, "created")
    t.eq(io.open(dir .. "/jobs/kd/a", "r"), nil)
  end },
}
