-- jobrt.submit's p:submit_body (core.submit_body): a native document from
-- its JSON text in one pass stores what the decoded path stores (the same
-- job read back, units translated), answers as submit's answer = "json"
-- does, and leaves every other document (more than the common shape, or a
-- problem the decoded path names) to that path.
local core = require("jobrt.core")
local json = require("jobrt.json")
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

local function pipeline(t, limits)
  local p, err = submit.new({ surface = "native", config = {}, limits = limits,
    plugin = function(name) return nil, "plugin " .. name .. " not found" end })
  t.ok(p, err)
  return p
end

-- A stored job without what differs between two submits.
local function stored(t, id)
  local job = t.ok(core.get(id))
  job.id, job.created_at, job.updated_at = nil, nil, nil
  return job
end

local function canon(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = canon(x) end
  return out
end

-- text, and the table the decoded path is given for it (units translated
-- as the native surface does).
local SAME = {
  { '{"title":"bench","labels":{"kind":"bench"},"tasks":[{"alias":"a","command":["true"],'
      .. '"resources":{"cpu":"100m"}}]}',
    { title = "bench", labels = { kind = "bench" },
      tasks = { { alias = "a", command = { "true" }, resources = { cpu = 100 } } } } },
  { ' { "tasks" : [ { "alias" : "x" , "command" : "echo hi; exit 0" } ] , "priority" : -3 } ',
    { priority = -3, tasks = { { alias = "x", command = "echo hi; exit 0" } } } },
  { '{"description":"d","max_parallelism":2,"labels":{},"tasks":[{"alias":"a","command":["true"],'
      .. '"env":{"A_1":"x","_b":""},"workdir":"/tmp","image":"host","engine":"e","priority":2,'
      .. '"retries":1,"tolerable":true,"timeout":"1h30m","resources":{"memory":"1.5KiB",'
      .. '"disk":"2G","gpu":0,"cpu":0.5}},{"alias":"b","deps":["a"],"command":["x"],"group":"g",'
      .. '"timeout":0.25,"resources":{"cpu":2,"memory":4096}},{"alias":"c","deps":["a","b"],'
      .. '"command":["sh","-c","true"],"timeout":"250ms","tolerable":false,"resources":'
      .. '{"cpu":"1.5"}},{"alias":"d","command":"true","timeout":30,"resources":{"cpu":"2"}}]}',
    { description = "d", max_parallelism = 2, labels = json.object({}), tasks = {
      { alias = "a", command = { "true" }, env = { A_1 = "x", _b = "" }, workdir = "/tmp",
        image = "host", engine = "e", priority = 2, retries = 1, tolerable = true, timeout = 5400,
        resources = { memory = 1536, disk = 2000000000, gpu = 0, cpu = 500 } },
      { alias = "b", deps = { "a" }, command = { "x" }, group = "g", timeout = 0.25,
        resources = { cpu = 2000, memory = 4096 } },
      { alias = "c", deps = { "a", "b" }, command = { "sh", "-c", "true" }, timeout = 0.25,
        tolerable = false, resources = { cpu = 1500 } },
      { alias = "d", command = "true", timeout = 30, resources = { cpu = 2000 } } } } },
  { '{"tasks":[{"alias":"a","command":["\u{e9}t\u{e9}"],"resources":{"cpu":1.0,"memory":1e3}}],'
      .. '"title":"caf\u{e9}"}',
    { title = "caf\u{e9}", tasks = { { alias = "a", command = { "\u{e9}t\u{e9}" },
      resources = { cpu = 1000, memory = 1000 } } } } },
}

-- Texts left to the decoded path.
local OTHER = {
  "", "[]", "null", '{"tasks":[{"alias":"a","command":["true"]}]', -- not a document
  '{"tasks":[]}', '{"title":"t"}', '{"tasks":[{"command":["true"]}]}', -- the model's problems
  '{"start":true,"tasks":[{"alias":"a","command":["true"]}]}',
  '{"owner":"bob","tasks":[{"alias":"a","command":["true"]}]}',
  '{"id":"mine","tasks":[{"alias":"a","command":["true"]}]}',
  '{"title":null,"tasks":[{"alias":"a","command":["true"]}]}',
  '{"title":"a\\"b","tasks":[{"alias":"a","command":["true"]}]}',
  '{"title":"t","title":"u","tasks":[{"alias":"a","command":["true"]}]}',
  '{"labels":{"k":"v","k":"w"},"tasks":[{"alias":"a","command":["true"]}]}',
  '{"labels":{"k":1},"tasks":[{"alias":"a","command":["true"]}]}',
  '{"priority":1.5,"tasks":[{"alias":"a","command":["true"]}]}',
  '{"max_parallelism":-1,"tasks":[{"alias":"a","command":["true"]}]}',
  '{"budget":3,"tasks":[{"alias":"a","command":["true"]}]}',
  '{"tasks":[{"alias":"a","command":["true"],"inputs":[]}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"cpu":"1.0001"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"cpu":"-1"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"cpu":"1 cores"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"memory":"1.5"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"memory":"1XB"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"gpu":"1"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"resources":{"cpus":1}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"timeout":"1h1h"}]}',
  '{"tasks":[{"alias":"a","command":["true"],"timeout":"5 10s"}]}',
  '{"tasks":[{"alias":"a","command":["true"],"timeout":-1}]}',
  '{"tasks":[{"alias":"a","command":["true"],"env":{"1A":"x"}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"env":{"A":2}}]}',
  '{"tasks":[{"alias":"a","command":["true"],"retries":-1}]}',
  '{"tasks":[{"alias":"a","command":["true"],"tolerable":1}]}',
  '{"tasks":[{"alias":"a","command":[1]}]}',
  '{"tasks":[{"alias":"a","command":["true"],"state":"running"}]}',
  '{"tasks":[{"alias":"a","command":["true"]}],"x":' .. string.rep("[", 40) .. string.rep("]", 40) .. "}",
  '{"tasks":[{"alias":"a","command":["true"],"deps":[' .. string.rep('"a",', 300) .. '"a"]}]}',
  '{"priority":99999999999999999999,"tasks":[{"alias":"a","command":["true"]}]}',
}

return {
  { "the one pass stores what the decoded path stores", function(t)
    open(t)
    local p = pipeline(t)
    for i, case in ipairs(SAME) do
      local job, f = p:submit_body(case[1], { owner = "alice" })
      t.ok(job, "case " .. i .. ": " .. tostring(f and f.message))
      if job then
        t.ok(core.durable())
        t.eq(job.state, "created")
        t.eq(job.owner, "alice")
        local other = t.ok(p:submit(case[2], { owner = "alice" }))
        t.ok(core.durable())
        t.eq(canon(stored(t, job.id)), canon(stored(t, other.id)), "case " .. i)
        -- the answer is the job read back, as a document on the wire
        local wire = canon(t.ok(json.decode(json.encode(t.ok(core.get(job.id))))))
        t.eq(canon(t.ok(json.decode(job.json))), wire, "case " .. i .. " answer")
      end
    end
  end },

  { "other documents are left to the decoded path", function(t)
    open(t)
    local p = pipeline(t)
    for _, text in ipairs(OTHER) do
      t.eq(p:submit_body(text, { owner = "alice" }), false, text)
    end
    -- the limits hold as the model's check holds them
    local small = pipeline(t, { title = 3, labels = 1, argv = 1, tasks = 1, env = 1 })
    local function doc(top, command, extra)
      return "{" .. top .. '"tasks":[{"alias":"a","command":' .. command .. (extra or "") .. "}]}"
    end
    t.eq(small:submit_body(doc('"title":"long",', '["true"]'), {}), false)
    t.eq(small:submit_body(doc('"labels":{"a":"1","b":"2"},', '["true"]'), {}), false)
    t.eq(small:submit_body(doc("", '["a","b"]'), {}), false)
    t.eq(small:submit_body(doc("", '["true"]', ',"env":{"A":"1","B":"2"}'), {}), false)
    t.eq(small:submit_body('{"tasks":[{"alias":"a","command":"x"},{"alias":"b","command":"y"}]}', {}),
      false)
    t.ok(small:submit_body(doc('"title":"abc","labels":{"a":"1"},', '["true"]', ',"env":{"A":"1"}'), {}))
  end },

  { "the scheduler's refusals come back as the decoded path's", function(t)
    open(t)
    local p = pipeline(t)
    local job, f = p:submit_body('{"tasks":[{"alias":"a","command":"true","deps":["b"]}]}', {})
    t.eq(job, nil)
    t.eq(f.status, 400)
    local _, g = p:submit({ tasks = { { alias = "a", command = "true", deps = { "b" } } } }, {})
    t.eq(f.message, g.message)
    job, f = p:submit_body('{"tasks":[{"alias":"a","command":[]}]}', {})
    t.eq(job, nil)
    _, g = p:submit({ tasks = { { alias = "a", command = json.array({}) } } }, {})
    t.eq(f.message, g.message)
    -- a pipeline with an estimator asks it: the decoded path
    local est = submit.new({ surface = "native", config = { estimator = "e" },
      plugin = function() return { estimate = function() return { cost = 1 } end }, {} end })
    t.eq(est:submit_body('{"tasks":[{"alias":"a","command":"true"}]}', {}), false)
  end },
}
