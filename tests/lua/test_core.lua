-- jobrt.core from Lua: the job API, error convention (nil, msg, CODE),
-- durable(), keyset listing, logs, results, and watchers that wait for the
-- next event.
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

local function wait_state(t, id, states, ms)
  local deadline = (ms or 5000) / 10
  for _ = 1, deadline do
    local job = core.get(id)
    if states[job.state] then return job end
    t.sleep(10)
  end
  return core.get(id)
end

return {
  { "submit, get and the error convention", function(t)
    open(t)
    local job, err, code = core.submit({
      id = "j-1", owner = "alice", surface = "test", title = "one", labels = { a = "b" },
      tasks = { { alias = "a", command = { "true" } }, { alias = "b", deps = { "a" }, command = "true" } },
    })
    t.ok(job, err)
    t.eq(job.state, "created")
    t.eq(job.labels, { a = "b" })
    t.eq(job.tasks[2].deps, { "a" })
    t.eq(job.tasks[2].command, "true")
    t.ok(core.durable())
    local again, e2, c2 = core.submit({ id = "j-1" })
    t.eq({ again, c2 }, { nil, "EXISTS" })
    t.match(e2, "already exists")
    local _, e3, c3 = core.get("nope")
    t.eq(c3, "NOT_FOUND")
    t.match(e3, "nope")
    local _, e4, c4 = core.submit({ tasks = { { alias = "x", command = { "true" }, deps = { "x" } } } })
    t.eq(c4, "INVALID")
    t.match(e4, "itself")
    local _, e5, c5 = core.submit({ tasks = { { alias = "x", command = { 1 } } } })
    t.eq(c5, "INVALID")
    t.match(e5, "command")
    t.err(function() core.get() end)
  end },

  { "submit answers the job exactly as get reads it back", function(t)
    open(t)
    local json = require("jobrt.json")
    -- A canonical text: sorted keys, number types and array marks included.
    local function canon(v)
      if type(v) == "number" then return math.type(v) .. ":" .. tostring(v) end
      if type(v) ~= "table" then return type(v) .. ":" .. tostring(v) end
      local keys, out = {}, {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do out[#out + 1] = canon(k) .. "=" .. canon(v[k]) end
      return (json.is_array(v) and "[" or "{") .. table.concat(out, ",") .. "}"
    end
    local job = t.ok(core.submit({
      title = "shape", n = 5, f = 1.5, empty = {}, labels = json.object({}), list = json.array({}),
      whole = 3.0, big = 1e20, neg0 = -0.0, tenth = 0.1, near = 2 ^ 53, over = 2.0 ^ 60,
      seq = { "a", "b" }, mixed = { "a", x = "b" }, fkey = { [1.5] = "x", [2] = "y" },
      holes = { 1, nil, 3 }, nested = { { {} }, json.null }, deep = { a = { b = { c = { 1.0 } } } },
      tasks = {
        { alias = "a", command = { "true" }, timeout = 1.25, env = { A = "1" }, workdir = "/tmp",
          resources = { cpu = 100, memory = 1024 }, tolerable = true, retries = 2, priority = 3 },
        { alias = "b", deps = { "a" }, command = "true", note = { x = json.null, y = { 2.5, 4.0 } } },
        { alias = "c", deps = { "b", "a" }, command = { "true" } },
      },
    }))
    t.ok(core.durable())
    t.eq(canon(job), canon(t.ok(core.get(job.id))))
    local owned = t.ok(core.submit({ id = "own-1", owner = "alice", surface = "x", priority = 4,
      max_parallelism = 2 }))
    t.eq(canon(owned), canon(t.ok(core.get("own-1"))))
    -- answer = "json": the same document as text, built from what was written.
    local doc = {
      title = "text \"quoted\"\n", n = 5, f = 1.5, empty = {}, labels = json.object({ k = "v" }),
      whole = 3.0, big = 1e20, tenth = 0.1, over = 2.0 ^ 60, waiting = "given", state = "x",
      seq = { "a", "b" }, nested = { { {} }, json.null }, deep = { a = { b = { c = { 1.0 } } } },
      tasks = {
        { alias = "a", command = { "true", "a\"b" }, timeout = 1.25, env = { A = "1" },
          resources = { cpu = 100, memory = 1024 }, tolerable = true, retries = 2, priority = 3,
          group = "g1", waiting = 1, deps = {}, attempt = 4 },
        { alias = "b", deps = { "a" }, command = "true", timeout = 0, group = json.null,
          note = { x = json.null, y = { 2.5, 4.0 }, s = "}],{[" } },
        { alias = "c", deps = { "b", "a" }, command = { "true" }, timeout = 30 },
      },
    }
    local answer = t.ok(core.submit(doc, { answer = "json" }))
    t.eq(answer.state, "created")
    t.ok(type(answer.json) == "string", "the answer is text")
    t.ok(core.durable())
    -- compared as documents on the wire (a whole float is written as an integer)
    local function wire(v) return canon(t.ok(json.decode(json.encode(v)))) end
    t.eq(canon(t.ok(json.decode(answer.json))), wire(t.ok(core.get(answer.id))))
    local plain = t.ok(core.submit({ id = "own-2", owner = "bob \1", surface = "s\t", tasks = {
      { alias = "only", command = "true" } } }, { answer = "json" }))
    t.eq(canon(t.ok(json.decode(plain.json))), wire(t.ok(core.get("own-2"))))
    -- Started, the answer is the table read back.
    local started = t.ok(core.submit({ tasks = { { alias = "a", command = "true" } } },
      { answer = "json", hold = "why" }))
    t.eq(started.json, nil)
    t.eq(started.state, "awaiting_approval")
  end },

  { "run to the end, logs and results", function(t)
    open(t)
    local job = core.submit({ tasks = { { alias = "a", command = "echo out; echo err >&2" } } }, { start = true })
    job = wait_state(t, job.id, { succeeded = true, failed = true })
    t.eq(job.state, "succeeded")
    t.eq(job.tasks[1].exit_code, 0)
    t.eq(job.tasks[1].outcome, "exited")
    local logs = core.logs(job.id)
    t.eq(#logs, 2)
    t.eq(#core.logs(job.id, { level = "warn" }), 1)
    t.ok(core.log(job.id, { level = "error", message = "from lua", data = { n = 1 } }))
    local mine = core.logs(job.id, { after = logs[2].id })
    t.eq(mine[1].message, "from lua")
    t.eq(mine[1].data, { n = 1 })
    t.ok(core.add_result(job.id, "out.txt", { href = "/x", type = "text/plain" }))
    t.eq(core.results(job.id)[1].href, "/x")
    local _, _, lcode = core.update(job.id, { title = "ok" })
    t.eq(lcode, nil)
  end },

  { "approval hold, release and update lock", function(t)
    open(t)
    local job = core.submit({ tasks = { { alias = "a", command = "sleep 5" } } }, { hold = true })
    t.eq(job.state, "awaiting_approval")
    job = core.approve(job.id, { accept = true, by = "ops", reason = "fine" })
    t.eq(job.approval.decision, "accept")
    t.eq(job.approval.by, "ops")
    job = wait_state(t, job.id, { running = true })
    t.eq(job.state, "running")
    local _, msg, code = core.update(job.id, { title = "x" })
    t.eq(code, "LOCKED")
    t.match(msg, "running")
    local _, _, c2 = core.restart(job.id)
    t.eq(c2, "CONFLICT")
    t.eq(core.cancel(job.id).state, "canceled")
  end },

  { "keyset pages and filters", function(t)
    open(t)
    for i = 1, 7 do core.submit({ id = "p" .. i, owner = i % 2 == 0 and "even" or "odd" }) end
    local ids, after = {}, nil
    repeat
      local page = core.list({ limit = 3, after = after })
      for _, j in ipairs(page.jobs) do ids[#ids + 1] = j.id end
      after = page.next
    until not after
    t.eq(ids, { "p1", "p2", "p3", "p4", "p5", "p6", "p7" })
    t.eq(#core.list({ owner = "even" }).jobs, 3)
    t.eq(#core.list({ state = "created", owner = "odd" }).jobs, 4)
    local _, _, code = core.list({ state = "bogus" })
    t.eq(code, "INVALID")
  end },

  { "count by owner, state (one or a list) and surface", function(t)
    open(t)
    for i = 1, 5 do
      core.submit({ id = "c" .. i, owner = i <= 3 and "alice" or "bob", surface = i == 5 and "openeo" or "native" })
    end
    t.ok(core.start("c1"))
    t.ok(core.start("c4", { hold = true }))
    t.eq(core.count({}), 5)
    t.eq(core.count(), 5)
    t.eq(core.count({ owner = "alice" }), 3)
    t.eq(core.count({ owner = "alice", state = "created" }), 2)
    t.eq(core.count({ owner = "alice", state = { "queued", "running", "succeeded" } }), 1)
    t.eq(core.count({ state = { "queued", "running", "succeeded", "awaiting_approval" } }), 2)
    t.eq(core.count({ owner = "bob", surface = "openeo" }), 1)
    t.eq(core.count({ surface = "native", state = "created" }), 2)
    t.eq(core.count({ owner = "nobody", state = "created" }), 0)
    local n, msg, code = core.count({ state = "bogus" })
    t.eq(n, nil)
    t.eq(code, "INVALID")
    t.match(msg, "bogus")
    _, msg, code = core.count({ state = { "created", 3 } })
    t.eq(code, "INVALID")
    t.match(msg, "state")
    _, msg, code = core.count({ owner = 1 })
    t.eq(code, "INVALID")
    t.match(msg, "owner")
  end },

  { "the sandbox executor checks what the binding read from the task table", function(t)
    local dir = os.tmpname()
    os.remove(dir)
    t.ok(core.open({ data_dir = dir, node = { cpu = 2000, max_tasks = 4 }, kill_grace = 1,
                     sandbox = { network = "none", allow_host_paths = { "/srv/data" } } }))
    t.cleanup = function()
      core.close()
      os.execute("rm -rf '" .. dir .. "'")
    end
    local cases = {
      { { image = 3 }, "image must be a name" },
      { { image = "nope" }, "unknown image 'nope'" },
      { { network = { "none" } }, "network.mode must be" },
      { { network = "sometimes" }, "network.mode must be" },
      { { network = { mode = "allow", domains = "a.org" } }, "network.domains must be a list" },
      { { network = { mode = "allow", domains = { "a.org", 7 } } }, "network.domains%[1%]" },
      { { network = { mode = "none", domains = { "a.org" } } }, "needs network.mode allow" },
      { { inputs = { a = 1 } }, "inputs must be a list" },
      { { inputs = { 5 } }, "inputs%[0%] must be an object" },
      { { inputs = { { source = "inline" } } }, 'needs "data"' },
      { { inputs = { { source = "url", url = "http://example.com/x", max_bytes = "big" } } }, "max_bytes" },
      { { inputs = { { source = "path", path = "/etc/passwd" } } }, "allow_host_paths" },
      { { inputs = { { source = "task-output", task = "b" } } }, "not in its deps" },
    }
    for i, c in ipairs(cases) do
      local task = c[1]
      task.alias, task.command = "a", { "true" }
      local job, msg, code = core.submit({ id = "s" .. i, tasks = { task } })
      t.eq(job, nil, c[2])
      t.eq(code, "INVALID", c[2])
      t.match(msg, c[2])
    end
    -- json.null counts as absent; an empty marked list is a list
    local json = require("jobrt.json")
    t.ok(core.submit({ id = "good", tasks = { { alias = "a", command = { "true" }, image = json.null,
      inputs = json.array({}), network = { mode = "allow", domains = { "a.org", "*.b.org" } } },
      { alias = "b", deps = { "a" }, command = { "true" },
        inputs = { { source = "inline", content = "x" }, { source = "task-output", task = "a" } } } } }))
  end },

  { "watch waits for the next event", function(t)
    open(t)
    local w <close> = core.watch()
    local got
    local co = coroutine.create(function() got = w:next(5000) end)
    coroutine.resume(co)
    t.eq(got, nil) -- still waiting: no event yet
    core.submit({ id = "w1" })
    for _ = 1, 100 do
      if got then break end
      t.sleep(5)
    end
    t.ok(got, "the watcher woke")
    t.eq({ got.job, got.type, got.state }, { "w1", "job", "created" })
    t.eq(w:next(0), nil)
    -- a timeout returns nil
    t.eq(w:next(20), nil)
    local evs, last = core.events(0, 10)
    t.eq(#evs, 1)
    t.eq(last, evs[1].seq)
  end },

  { "node capacity and stats", function(t)
    open(t, { cpu = 1500, memory = 1 << 30, gpu = 1, max_tasks = 3 })
    local n = core.node()
    t.eq({ n.cpu, n.memory, n.gpu, n.max_tasks }, { 1500, 1 << 30, 1, 3 })
    local _, msg, code = core.submit({ tasks = { { alias = "g", command = "true", resources = { gpu = 2 } } } })
    t.eq(code, "INVALID")
    t.match(msg, "gpu")
  end },
}
