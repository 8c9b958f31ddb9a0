-- The built-in approval policies (quota, resource_caps, schedule, manual)
-- through the submission pipeline on a real core, and the held jobs'
-- re-evaluation (jobrt.holds): a quota-held job released when its owner's
-- job ends, a scheduled one when its window opens.
local async = require("jobrt.async")
local core = require("jobrt.core")
local holds_mod = require("jobrt.holds")
local plugins = require("jobrt.plugins")
local submit = require("jobrt.submit")

local function open(t)
  local dir = os.tmpname()
  os.remove(dir)
  t.ok(core.open({ data_dir = dir, node = { cpu = 8000, memory = 8 * 2 ^ 30, max_tasks = 8 }, kill_grace = 1 }))
  t.cleanup = function()
    core.close()
    os.execute("rm -rf '" .. dir .. "'")
  end
end

-- A pipeline for surface "test" whose approval list is the given plugin
-- entries (name -> the YAML's entry), in order.
local function pipeline(t, entries, order, opts)
  local loader = plugins.new({})
  local p, err = submit.new({
    surface = "test", config = { approval = order }, estimator = false,
    plugin = function(name) return loader:plugin(entries, name) end,
    on_hold = opts and opts.on_hold,
  })
  t.ok(p, err)
  return p
end

local function job(owner, extra)
  local j = { title = "j", tasks = { { alias = "a", command = { "sleep", "30" }, timeout = 60,
                                       resources = { cpu = 1000, memory = 64 * 1024 * 1024 } } } }
  for k, v in pairs(extra or {}) do j[k] = v end
  return j, owner
end

local function submitted(t, p, owner, extra)
  local j = job(owner, extra)
  local stored, f = p:submit(j, { owner = owner, start = true })
  t.ok(stored, f and f.message)
  return stored
end

local function wait_state(t, id, state)
  for _ = 1, 200 do
    local j = core.get(id)
    if j and j.state == state then return j end
    t.sleep(20)
  end
  t.eq(core.get(id).state, state, "job " .. id)
end

return {
  { "quota: the n-th active job waits with the reason and who holds it", function(t)
    open(t)
    local p = pipeline(t, { quota = { use = "approve.quota", max_active = 2 } }, { "quota" })
    local a = submitted(t, p, "alice")
    local b = submitted(t, p, "alice")
    local c = submitted(t, p, "alice")
    t.ok(a.state ~= "awaiting_approval" and b.state ~= "awaiting_approval", a.state .. " " .. b.state)
    t.eq(c.state, "awaiting_approval")
    t.eq(c.approval.decision, "wait")
    t.eq(c.approval.by, "quota")
    t.eq(c.approval.reason, "alice has 2 jobs queued or running (the quota is 2)")
    -- Another owner is not counted against alice.
    t.ok(submitted(t, p, "bob").state ~= "awaiting_approval")
    for _, j in ipairs({ a, b, c }) do core.cancel(j.id) end
  end },

  { "quota: cpu and memory in flight, and over: reject", function(t)
    open(t)
    local p = pipeline(t, { q = { use = "approve.quota", max_cpu = "1500m", max_memory = "1GiB" } }, { "q" })
    local a = submitted(t, p, "alice")
    local b = submitted(t, p, "alice")
    t.eq(b.state, "awaiting_approval")
    t.eq(b.approval.reason, "alice's jobs ask for 1 cpu in flight and this one 1 cpu more (the quota is 1.5 cpu)")
    local big = submitted(t, p, "bob", { tasks = { { alias = "m", command = { "true" },
      resources = { cpu = 100, memory = 2 * 2 ^ 30 } } } })
    t.eq(big.approval.reason, "bob's jobs ask for 0 MiB of memory in flight and this one 2 GiB more (the quota is 1 GiB)")
    local r = pipeline(t, { q = { use = "approve.quota", max_active = 0, over = "reject" } }, { "q" })
    local no = submitted(t, r, "carol")
    t.eq(no.state, "rejected")
    t.eq(no.error, "carol has 0 jobs queued or running (the quota is 0)")
    for _, j in ipairs({ a, b, big }) do core.cancel(j.id) end
  end },

  { "resource_caps names the task and the limit", function(t)
    open(t)
    local p = pipeline(t, { caps = { use = "approve.resource_caps", cpu = 2, memory = "1GiB", timeout = "1h",
                                     network = { "none" } } }, { "caps" })
    local cases = {
      { { alias = "x", command = { "true" }, timeout = 60, resources = { cpu = 4000, memory = 1024 } },
        "task x asks for 4 cpu, more than the limit of 2 cpu" },
      { { alias = "y", command = { "true" }, timeout = 60, resources = { memory = 2 * 2 ^ 30 } },
        "task y asks for 2 GiB of memory, more than the limit of 1 GiB" },
      { { alias = "z", command = { "true" }, timeout = 60 }, "task z sets no memory limit (the limit is 1 GiB)" },
      { { alias = "w", command = { "true" }, timeout = 7200, resources = { memory = 1024 } },
        "task w has a time limit of 2h, more than the limit of 1h" },
      { { alias = "v", command = { "true" }, resources = { memory = 1024 } }, "task v has no time limit (the limit is 1h)" },
      { { alias = "u", command = { "true" }, timeout = 5, resources = { memory = 1024 }, network = { mode = "full" } },
        "task u asks for network full (allowed: none)" },
    }
    for _, c in ipairs(cases) do
      local stored = p:submit({ title = "c", tasks = { c[1] } }, { owner = "alice", start = true })
      t.eq(stored.state, "rejected", c[2])
      t.eq(stored.error, c[2])
    end
    local fine = p:submit({ title = "ok", tasks = { { alias = "a", command = { "true" }, timeout = 5,
      resources = { cpu = 500, memory = 1024 } } } }, { owner = "alice", start = true })
    t.ok(fine.state ~= "rejected", fine.error)
  end },

  { "schedule: windows across midnight, days, and held labels", function(t)
    local schedule = assert(plugins.new({}):plugin({}, "approve.schedule"))
    local base = os.time({ year = 2026, month = 3, day = 2, hour = 0 }) -- a Monday, local time
    base = base - base % 86400 -- 2026-03-02T00:00Z
    local o = { hours = { "22:00-06:00" }, labels = {} }
    t.eq(schedule.open(base + 23 * 3600, o), true, "23:00 is inside")
    t.eq(schedule.open(base + 5 * 3600, o), true, "05:00 is inside (the window started the day before)")
    local ok, nxt = schedule.open(base + 12 * 3600, o)
    t.eq(ok, false)
    t.eq(nxt, base + 22 * 3600, "next opening at 22:00")
    ok, nxt = schedule.open(base + 12 * 3600, { hours = { "09:00-10:00" }, days = { "wed" } })
    t.eq(ok, false)
    t.eq(os.date("!%Y-%m-%dT%H:%M", nxt), "2026-03-04T09:00", "the next Wednesday")
    local decision, reason, when = schedule.approve({ labels = {} }, { options = o, now = base + 12 * 3600 })
    t.eq(decision, "wait")
    t.match(reason, "next at 2026%-03%-02T22:00:00Z")
    t.eq(when, { at = base + 22 * 3600 })
    decision, reason, when = schedule.approve({ labels = { freeze = "yes" } },
      { options = { labels = { freeze = "*" } }, now = base })
    t.eq({ decision, reason, when }, { "wait", "the label freeze=yes holds the job until it is approved" })
  end },

  { "manual: roles it names may approve the jobs it holds, others not", function(t)
    open(t)
    local p = pipeline(t, { review = { use = "approve.manual", roles = { "approver" } } }, { "review" })
    local j = submitted(t, p, "alice")
    t.eq(j.state, "awaiting_approval")
    t.eq(j.approval.reason, "waiting for an administrator or a user with the role approver to approve j")
    t.eq(p:may_approve({ name = "ann", roles = { "approver" } }, j), true)
    t.eq(p:may_approve({ name = "alice", roles = { "user" } }, j), false)
    t.eq(p:may_approve({ name = "root", roles = { "admin" } }, j), true)
    core.cancel(j.id)
  end },

  { "a quota-held job is released by itself when its owner's job ends", function(t)
    open(t)
    local h = holds_mod.new({ core = core, deadline = 2, memory = 16 * 1024 * 1024 })
    local p = pipeline(t, { quota = { use = "approve.quota", max_active = 1 } }, { "quota" },
      { on_hold = function(job, when) h:note(job, when) end })
    h:start(function(surface) return surface == "test" and p or nil end)
    local first = submitted(t, p, "alice")
    local second = submitted(t, p, "alice")
    local third = submitted(t, p, "alice")
    t.eq({ second.state, third.state }, { "awaiting_approval", "awaiting_approval" })
    t.sleep(100)
    t.eq(core.get(second.id).state, "awaiting_approval", "nothing changed yet")
    core.cancel(first.id)
    -- The oldest held job goes first; the next one still waits.
    local released = wait_state(t, second.id, "running")
    t.eq(released.approval.decision, "accept")
    t.eq(released.approval.by, "the approval policies")
    t.eq(core.get(third.id).state, "awaiting_approval")
    core.cancel(second.id)
    wait_state(t, third.id, "running")
    core.cancel(third.id)
    h:stop()
  end },

  { "a job held until a time is released when it comes, without polling", function(t)
    open(t)
    local h = holds_mod.new({ core = core, deadline = 2, memory = 16 * 1024 * 1024 })
    local at = os.time() + 1
    local stored = assert(core.submit({ title = "later", owner = "alice", surface = "test",
      tasks = { { alias = "a", command = { "true" } } } }, { start = true, hold = "until later" }))
    local released = false
    local fake = {
      recheck = function(_, id)
        if os.time() >= at then
          released = true
          core.approve(id, { accept = true, by = "the approval policies" })
          return nil
        end
        return { at = at }
      end,
    }
    h:note(stored, { at = at })
    h:start(function() return fake end)
    local started = async.now()
    wait_state(t, stored.id, "succeeded")
    t.ok(released)
    t.ok(async.now() - started < 4, "released within a few seconds of its time")
    h:stop()
  end },
}
