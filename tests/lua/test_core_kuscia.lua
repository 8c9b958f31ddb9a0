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

  { "many watchers see every event once, in order, across quiet commits", function(t)
    open(t)
    t.ok(core.submit({ id = "logger" }))
    t.ok(core.durable())
    local N, got, done = 100, {}, 0
    for i = 1, N do
      local w = core.watch()
      got[i] = {}
      coroutine.wrap(function()
        while #got[i] < 3 do
          local ev = w:next(5000)
          if not ev then break end
          got[i][#got[i] + 1] = ev.job .. ":" .. ev.seq
        end
        got[i].position = w:position()
        got[i].after = w:next(0)
        w:close()
        done = done + 1
      end)()
    end
    for k = 1, 3 do
      -- commits that add no event (log lines) wake nobody for nothing
      t.ok(core.log("logger", { message = "quiet " .. k }))
      t.ok(core.durable())
      t.ok(core.submit({ id = "w" .. k }))
      t.sleep(5)
    end
    t.ok(wait_for(t, function() return done == N end))
    local evs = core.events(0, 10)
    local want = {}
    for k = 2, 4 do want[#want + 1] = evs[k].job .. ":" .. evs[k].seq end
    t.eq(want, { "w1:2", "w2:3", "w3:4" })
    for i = 1, N do
      t.eq({ got[i][1], got[i][2], got[i][3], got[i].position, got[i].after },
        { want[1], want[2], want[3], 4, nil })
    end
    -- a watcher's timeout runs through quiet commits
    local w <close> = core.watch()
    local t0, res = require("luv").now(), "waiting"
    coroutine.wrap(function() res = w:next(150) end)()
    for _ = 1, 5 do
      t.ok(core.log("logger", { message = "quiet" }))
      t.ok(core.durable())
      t.sleep(10)
    end
    t.ok(wait_for(t, function() return res ~= "waiting" end, 2000))
    t.eq(res, nil)
    t.ok(require("luv").now() - t0 < 1000)
  end },
}
