-- jobrt.modelc, the core model's check in C: on every job of a corpus (the
-- cases of test_submit.lua and native_strict, plain Lua tables, and random
-- mutations of valid jobs) it accepts exactly what model.lua's Lua walker
-- accepts, converts whole floats alike, and model.validate answers as the
-- Lua walker alone does.
local json = require("jobrt.json")
local model = require("jobrt.model")

local NULL = json.null
local JOB = model.MODEL.job

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return setmetatable(out, getmetatable(v))
end

-- Equal values of the same math type, tables with the same marks.
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b)) end
  if type(a) ~= "table" then return a == b end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, x in pairs(a) do
    if not same(x, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local SMALL = model.limits({
  title = 4, description = "8", label_key = 2, label_value = 3, labels = 1, env = 1,
  env_value = "1KiB", tasks = 1, inline_input = 5, argv = 2,
})
local DEFAULT = model.limits(nil)

local TEXTS = {
  '{"title": "t", "tasks": [{"alias": "a", "command": ["true"]}]}',
  '{"title": null, "labels": {}, "tasks": [{"alias": "a", "command": "true", "deps": []}]}',
  '{"labels": [], "tasks": [{"alias": "a"}]}',
  '{"title": "bench", "labels": {"kind": "bench"}, "tasks": [{"alias": "a", "command": ["true"], "resources": {"cpu": 100}}]}',
  '{"titel": "x", "tasks": [{"alias": "a"}]}',
  '{"tasks": [{"alias": "a", "comand": ["true"]}]}',
  '{"tasks": [{"alias": "a"}, {"alias": "b", "resources": {"cpus": 1}}]}',
  '{"tasks": [{"alias": "a", "network": {"mod": "none"}}]}',
  '{"tasks": [{"alias": "a", "inputs": [{"source": "inline", "data": "x"}, {"soruce": "inline"}]}]}',
  '{"tasks": [{"alias": "a", "outputs": [{"nmae": "o"}]}]}',
  '{"zzzzzz": 1, "tasks": [{"alias": "a"}]}',
  '{"state": "succeeded", "tasks": [{"alias": "a"}]}',
  '{"title": 5, "tasks": [{"alias": "a"}]}',
  '{"labels": "team", "tasks": [{"alias": "a"}]}',
  '{"labels": {"team": 1}, "tasks": [{"alias": "a"}]}',
  '{"priority": 1.5, "tasks": [{"alias": "a"}]}',
  '{"priority": "3", "tasks": [{"alias": "a"}]}',
  '{"priority": 3.0, "budget": 2.5, "tasks": [{"alias": "a", "timeout": 1.0, "retries": 2.0}]}',
  '{"max_parallelism": -1, "tasks": [{"alias": "a"}]}',
  '{"tasks": {"a": 1}}',
  '{"tasks": ["a"]}',
  '{"tasks": []}',
  '{"tasks": null}',
  '{"title": "x"}',
  '[]',
  '"x"',
  'null',
  '{"tasks": [{"alias": "a", "tolerable": "yes"}]}',
  '{"tasks": [{"alias": "a", "command": ["echo", 1]}]}',
  '{"tasks": [{"alias": "a", "env": {"A=B": "x"}}]}',
  '{"tasks": [{"alias": "a", "env": {"PATH": "/bin", "_X1": "y"}}]}',
  '{"tasks": [{"alias": "a", "network": {"mode": "ful"}}]}',
  '{"tasks": [{"alias": "a", "network": {"mode": "allow", "domains": ["example.org"]}}]}',
  '{"tasks": [{"command": ["true"]}]}',
  '{"tasks": [{"alias": null}]}',
  '{"tasks": [{"alias": "a", "state": null}]}',
  '{"title": 5, "tasks": [{"alias": "a", "comand": "x"}]}',
  '{"id": "x", "title": "renamed", "labels": {"a": "b"}}',
  '{"owner": "x"}',
  '{"doc": {"anything": [1, {"x": null}]}, "tasks": [{"alias": "a", "inputs": [{"source": "url", "url": "u", "max_bytes": 0}]}]}',
  '{"tasks": [{"alias": "a", "inputs": [{"source": "path", "path": "/p", "readonly": true, "max_bytes": 1}]}]}',
  '{"tasks": [{"alias": "a", "resources": {"cpu": -1, "memory": 1e300, "gpu": 0}}]}',
  '{"tasks": [{"alias": "a", "timeout": -0.5}]}',
  '{"tasks": [{"alias": "a", "deps": ["b", null]}, {"alias": "b"}]}',
}

local function decoded()
  local out = {}
  for _, text in ipairs(TEXTS) do out[#out + 1] = assert(json.decode(text)) end
  local function x(n) return string.rep("x", n) end
  local env = {}
  for i = 0, 128 do env["E" .. i] = "v" end
  -- The limits cases and a surface's own plain tables.
  for _, j in ipairs({
    { title = "hello", tasks = { { alias = "a" } } },
    { title = "four", description = "123456789", tasks = { { alias = "a" } } },
    { labels = { abc = "v", k = "long" }, tasks = { { alias = "a" } } },
    { tasks = { { alias = "a", env = { A = x(1025) } } } },
    { tasks = { { alias = "a", env = env } } },
    { tasks = { { alias = "a" }, { alias = "b" } } },
    { tasks = { { alias = "a", inputs = { { source = "inline", data = "123456" } } } } },
    { tasks = { { alias = "a", command = { "a", "b", "c" } } } },
    { title = "x", doc = { any = { thing = 1 } }, tasks = { {
      alias = "graph", image = "host", command = { "/.jobrt/jobrt", "eval" },
      inputs = { { source = "jobrt", target = "/.jobrt/jobrt" }, { source = "inline", data = "{}", target = "/inputs/p" } },
      env = { JOBRT_LOG_LEVEL = "info" }, resources = { cpu = 1000, memory = 1 << 30 }, timeout = 600,
    } } },
    { tasks = { [1] = { alias = "a" }, [3] = { alias = "c" } } },
    { tasks = { { alias = "a" }, x = 1 } },
    { [1] = "x", tasks = { { alias = "a" } } },
    { tasks = { { alias = "a", command = { "x", [3] = "z" } } } },
    { tasks = { { alias = "a", env = { [1] = "x" } } } },
    { labels = { [true] = "x" }, tasks = { { alias = "a" } } },
    { priority = 0 / 0, tasks = { { alias = "a" } } },
    { budget = 0 / 0, tasks = { { alias = "a" } } },
    { priority = math.huge, budget = math.huge, tasks = { { alias = "a" } } },
    { priority = 2.0 ^ 63, tasks = { { alias = "a" } } },
    { tasks = { { alias = "a", retries = -0.0 } } },
  }) do out[#out + 1] = j end
  return out
end

-- Values a mutation puts somewhere.
local PALETTE = {
  "x", "", "true", "inline", "none", "full", "a", "A=B", "PATH", "hello",
  0, -1, 1, 3, 2.0, 1.5, -0.0, 1e300, math.maxinteger, true, false, NULL,
  function() return {} end, function() return json.array({}) end,
  function() return json.object({}) end, function() return json.array({ "a" }) end,
  function() return { "a", "b" } end, function() return { a = "b" } end,
  function() return { [1] = "x", y = "z" } end, function() return json.object({ alias = "a" }) end,
  function() return json.array({ json.object({ alias = "b" }) }) end,
  function() return json.object({ source = "inline", data = "d" }) end,
}
local NAMES = { "title", "tasks", "alias", "command", "env", "labels", "inputs", "outputs",
  "resources", "cpu", "network", "mode", "domains", "source", "data", "name", "priority",
  "retries", "timeout", "id", "state", "doc", "deps", "max_bytes", "budget", "titel", "A", "_1", "1x" }

local function pick(list)
  local v = list[math.random(#list)]
  if type(v) == "function" then return v() end
  return v
end

-- Every table in v, with v itself.
local function tables_of(v, out)
  out = out or {}
  if type(v) == "table" then
    out[#out + 1] = v
    for _, x in pairs(v) do tables_of(x, out) end
  end
  return out
end

local function mutate(doc)
  for _ = 1, math.random(3) do
    local all = tables_of(doc)
    local t = all[math.random(#all)]
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local r = math.random(4)
    if r == 1 and #keys > 0 then
      t[keys[math.random(#keys)]] = nil
    elseif r == 2 then
      t[pick(NAMES)] = pick(PALETTE)
    elseif r == 3 and #keys > 0 then
      t[keys[math.random(#keys)]] = pick(PALETTE)
    else
      t[#t + 1] = pick(PALETTE)
    end
  end
  return doc
end

return {
  { "the C walker accepts exactly what the Lua walker accepts, and converts alike", function(t)
    t.ok(model.check_c, "jobrt.modelc is loaded")
    math.randomseed(11)
    local corpus = decoded()
    local valid = {}
    for _, j in ipairs(corpus) do
      if model.walk(copy(j), { taskless = true }, DEFAULT) then valid[#valid + 1] = j end
    end
    t.ok(#valid >= 10, "enough valid jobs to mutate")
    for _ = 1, 3000 do corpus[#corpus + 1] = mutate(copy(valid[math.random(#valid)])) end
    local accepted, refused = 0, 0
    for i, j in ipairs(corpus) do
      for _, limits in ipairs({ DEFAULT, SMALL }) do
        for _, partial in ipairs({ false, true }) do
          local a, b = copy(j), copy(j)
          local c_ok = model.check_c(a, JOB, limits, partial) == true
          local lua_ok = model.walk(b, { taskless = true, partial = partial }, limits) ~= nil
          if c_ok ~= lua_ok or (c_ok and not same(a, b)) then
            t.ok(false, string.format("case %d (partial %s): C %s, Lua %s: %s", i, partial, c_ok, lua_ok,
              (pcall(json.encode, j)) and json.encode(j) or "(not JSON)"))
          end
          if c_ok then accepted = accepted + 1 else refused = refused + 1 end
          -- The whole check: validate (C, then Lua for the messages) says what Lua says.
          for _, taskless in ipairs({ false, true }) do
            local opts = { limits = limits, partial = partial, taskless = taskless }
            local x, y = copy(j), copy(j)
            local r1, e1 = model.validate(x, opts)
            local r2, e2 = model.walk(y, opts, limits)
            if (r1 == nil) ~= (r2 == nil) or e1 ~= e2 or not same(x, y) then
              t.ok(false, string.format("case %d: validate %s, walk %s", i, e1, e2))
            end
          end
        end
      end
    end
    t.ok(accepted > 1000 and refused > 1000, string.format("both verdicts seen (%d, %d)", accepted, refused))
  end },

  { "a table the C walker does not know is left to the Lua walker", function(t)
    local job = setmetatable({ title = "x", tasks = { { alias = "a" } } }, {})
    t.eq(model.check_c(copy(job), JOB, DEFAULT, false), nil)
    t.ok(model.validate(job), "accepted by the Lua walker")
  end },
}
