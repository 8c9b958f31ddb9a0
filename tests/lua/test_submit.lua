-- jobrt.model and jobrt.submit: the model's check with configured limits, the
-- pipeline's policies (accept, reject, wait, failures) and estimator, and
-- the policies' read-only view of the core (job, jobs, count).
local core = require("jobrt.core")
local json = require("jobrt.json")
local model = require("jobrt.model")
local submit = require("jobrt.submit")

local function open(t)
  local dir = os.tmpname()
  os.remove(dir)
  t.ok(core.open({ data_dir = dir, node = { cpu = 2000, max_tasks = 4 }, kill_grace = 1 }))
  t.cleanup = function()
    core.close()
    os.execute("rm -rf '" .. dir .. "'")
  end
end

local function job(extra)
  local j = { title = "t", tasks = { { alias = "a", command = { "true" } } } }
  for k, v in pairs(extra or {}) do j[k] = v end
  return j
end

local function task(extra)
  local t = { alias = "a", command = { "true" } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- A pipeline whose plugins are the given functions, by name.
local function pipeline(t, policies, opts)
  opts = opts or {}
  local mods = opts.mods or {}
  local names = {}
  for name, fn in pairs(policies or {}) do
    mods[name] = fn
    names[#names + 1] = name
  end
  table.sort(names)
  local logged = {}
  local p, err = submit.new({
    surface = opts.surface or "test",
    config = { approval = names, estimator = opts.estimator },
    limits = opts.limits,
    plugin = function(name)
      if mods[name] == nil then return nil, "plugin " .. name .. " not found" end
      return mods[name], { name = name }
    end,
    log = function(level, msg) logged[#logged + 1] = level .. ": " .. msg end,
  })
  t.ok(p, err)
  return p, logged
end

local function messages(id)
  local out = {}
  for _, l in ipairs(core.logs(id, {})) do out[#out + 1] = l.level .. ": " .. l.message end
  return out
end

return {
  { "every limit is configurable and named in the refusal", function(t)
    local limits = model.limits({
      title = 4, description = "8", label_key = 2, label_value = 3, labels = 1, env = 1,
      env_value = "1KiB", tasks = 1, inline_input = 5, argv = 2,
    })
    t.eq(limits.env_value, 1024, "sizes take units")
    t.eq(model.limits(nil).title, 256, "defaults")
    local cases = {
      { job({ title = "hello" }), "title: longer than limits.title (4 bytes)" },
      { job({ description = "123456789" }), "description: longer than limits.description (8 bytes)" },
      { job({ labels = { abc = "v" } }), "labels.abc: longer than limits.label_key (2 bytes)" },
      { job({ labels = { k = "long" } }), "labels.k: longer than limits.label_value (3 bytes)" },
      { job({ labels = { a = "1", b = "2" } }), "labels: more than limits.labels (1 entries)" },
      { job({ tasks = { task({ env = { A = "1", B = "2" } }) } }), "tasks[0].env: more than limits.env (1 entries)" },
      { job({ tasks = { task({ env = { A = string.rep("x", 1025) } }) } }),
        "tasks[0].env.A: longer than limits.env_value (1024 bytes)" },
      { job({ tasks = { task(), task({ alias = "b" }) } }), "tasks: more than limits.tasks (1 entries)" },
      { job({ tasks = { task({ inputs = { { source = "inline", data = "123456" } } }) } }),
        "tasks[0].inputs[0].data: longer than limits.inline_input (5 bytes)" },
      { job({ tasks = { task({ command = { "a", "b", "c" } }) } }),
        "tasks[0].command: more than limits.argv (2 entries)" },
    }
    for _, c in ipairs(cases) do
      local ok, err = model.validate(c[1], { limits = limits })
      t.eq({ ok, err }, { nil, c[2] })
    end
    t.ok(model.validate(job({ title = "four" }), { limits = limits }), "at the limit")
  end },

  { "the model: plain Lua lists, JSON arrays, nulls, partial updates, taskless jobs", function(t)
    -- A surface's own tables (openEO's task) are plain Lua; decoded JSON marks arrays.
    t.ok(model.validate({ title = "x", doc = { any = { thing = 1 } }, tasks = { {
      alias = "graph", image = "host", command = { "/.jobrt/jobrt", "eval" },
      inputs = { { source = "jobrt", target = "/.jobrt/jobrt" }, { source = "inline", data = "{}", target = "/inputs/p" } },
      env = { JOBRT_LOG_LEVEL = "info" }, resources = { cpu = 1000, memory = 1 << 30 }, timeout = 600,
    } } }))
    t.ok(model.validate(json.decode('{"title": null, "labels": {}, "tasks": [{"alias": "a", "command": "true", "deps": []}]}')))
    local ok, err = model.validate(json.decode('{"labels": [], "tasks": [{"alias": "a"}]}'))
    t.eq({ ok, err }, { nil, "labels: must be an object of strings, got a list" })
    local j = job({ priority = 3.0 })
    t.ok(model.validate(j))
    t.eq(math.type(j.priority), "integer", "a whole float becomes an integer")
    t.ok(model.validate({ title = "renamed" }, { partial = true }), "an update needs no tasks")
    t.eq({ model.validate({ id = "x" }, { partial = true }) }, { nil, "id: cannot be changed after submit" })
    t.eq({ model.validate({ title = "x" }) }, { nil, "tasks: a job needs at least one task" })
    t.ok(model.validate({ title = "x" }, { taskless = true }), "a simple job-manager job")
    t.eq({ model.validate("x") }, { nil, "the job must be a JSON object, got a string" })
  end },

  { "core codes map once to the runtime's vocabulary", function(t)
    t.eq(submit.core_failure("gone", "NOT_FOUND"), { status = 404, code = "NotFound", message = "gone", core_code = "NOT_FOUND" })
    t.eq(submit.core_failure("x", "LOCKED").code, "Locked")
    t.eq(submit.core_failure("x", "EXISTS").status, 409)
    t.eq(submit.core_failure("x", "STORE").code, "Unavailable")
    t.eq(submit.core_failure("x", "WHATEVER").code, "Internal")
  end },

  { "policies: accept starts, reject and wait are logged, failures are PolicyFailed", function(t)
    open(t)
    local seen
    local p = pipeline(t, {
      a_inspect = function(j, ctx)
        seen = { owner = j.owner, surface = j.surface, option = ctx.options.name, principal = ctx.principal }
        return "accept"
      end,
      b_title = function(j)
        if j.title == "no" then return "reject", "titles must not be no" end
        if j.title == "later" then return "wait", "a human looks at it" end
        return "accept"
      end,
    })
    local ok = t.ok(p:submit(job({ title = "yes" }), { owner = "alice", start = true, principal = { name = "alice" } }))
    t.eq(seen, { owner = "alice", surface = "test", option = "a_inspect", principal = { name = "alice" } })
    t.ok(ok.state == "queued" or ok.state == "running", ok.state)
    local no = p:submit(job({ title = "no" }), { owner = "alice", start = true })
    t.eq({ no.state, no.error }, { "rejected", "titles must not be no" })
    t.eq(messages(no.id), { "error: rejected by b_title: titles must not be no" })
    local later = p:submit(job({ title = "later" }), { owner = "alice", start = true })
    t.eq(later.state, "awaiting_approval")
    t.eq(messages(later.id), { "info: awaiting approval (b_title: a human looks at it)" })
    local approved = t.ok(p:approve(later.id, { accept = true, by = "ops" }))
    t.ok(approved.state ~= "awaiting_approval", approved.state)
    -- Not started: the policies are not asked; starting asks them.
    local created = p:submit(job({ title = "no" }), { owner = "alice" })
    t.eq(created.state, "created")
    t.eq(p:start(created.id, {}).state, "rejected")
    local bad, f = p:submit(job({ title = 7 }), { start = true })
    t.eq({ bad, f.status, f.code }, { nil, 400, "BadRequest" })

    local broken, logged = pipeline(t, {
      boom = function(j) if j.title == "boom" then error("no mood") end return "maybe" end,
    })
    local _, f1 = broken:submit(job({ title = "boom" }), { start = true, request_id = "r-1" })
    t.eq({ f1.status, f1.code, f1.message }, { 500, "PolicyFailed", "approval policy boom failed (request r-1)" })
    t.match(logged[1], "no mood")
    local _, f2 = broken:submit(job({ title = "x" }), { start = true })
    t.eq(f2.message, "approval policy boom answered maybe; expected accept, reject or wait")
    local page = core.list({ owner = nil, limit = 100 })
    for _, j in ipairs(page.jobs) do t.ok(j.title ~= "boom", "a failed decision stores nothing") end
  end },

  { "a broken or missing policy stops the pipeline from being made", function(t)
    local p, err = submit.new({ surface = "s", config = { approval = { "gone" } },
      plugin = function(name) return nil, "plugin " .. name .. " not found" end })
    t.eq({ p, err }, { nil, "plugin gone not found" })
    p, err = submit.new({ surface = "s", config = { approval = { "x" } }, plugin = function() return { 1 }, {} end })
    t.eq(p, nil)
    t.match(err, "an approval policy returns")
    p, err = submit.new({ surface = "s", config = { approval = "x" }, plugin = function() end })
    t.eq({ p, err }, { nil, "surfaces.s.approval must be a list of plugin names" })
  end },

  { "the estimator prices a job at submit", function(t)
    open(t)
    local p = pipeline(t, nil, { estimator = "prices", mods = {
      prices = { estimate = function(j, ctx) return { costs = #j.tasks * ctx.factor, currency = "EUR" } end },
    } })
    local stored = p:submit(job(), { owner = "alice", estimate = { factor = 3 } })
    t.eq(core.get(stored.id).estimate, { costs = 3, currency = "EUR" })
    t.eq(p:estimate(job(), { factor = 2 }).costs, 2)
    local none = pipeline(t)
    t.eq(select(2, none:estimate(job())).code, "EstimateUnavailable")
  end },

  { "the policies' view: one surface's jobs, one owner's list and counts, read-only", function(t)
    open(t)
    local p = pipeline(t)
    local other = pipeline(t, nil, { surface = "elsewhere" })
    local a = p:submit(job(), { owner = "alice" })
    p:submit(job(), { owner = "alice", start = true })
    p:submit(job(), { owner = "bob", start = true })
    other:submit(job(), { owner = "alice", start = true })
    local elsewhere = other:submit(job(), { owner = "alice" })
    local view = p.view
    t.eq(view.job(a.id).owner, "alice")
    local copy = view.job(a.id)
    copy.owner = "mallory"
    t.eq(core.get(a.id).owner, "alice", "a copy, not the core's")
    t.eq(select(3, view.job(elsewhere.id)), "NOT_FOUND", "another surface's job is not there")
    t.eq(#view.jobs({ owner = "alice" }).jobs, 2)
    t.eq(view.count({ owner = "alice" }), 4, "every surface")
    t.eq(view.count({ owner = "alice", surface = "test" }), 2)
    t.eq(view.count({ owner = "alice", state = "created" }), 2)
    t.eq(view.count({ owner = "alice", state = { "queued", "running", "succeeded" } }), 2)
    t.eq(view.count({ owner = "carol", state = { "queued", "running" } }), 0)
    t.err(function() view.count({}) end, "owner")
    t.err(function() view.submit = core.submit end, "read%-only")
    t.eq(view.submit, nil)
  end },
}
