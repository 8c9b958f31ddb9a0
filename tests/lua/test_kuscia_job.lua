-- api.kuscia.job: a CreateJobRequest as a core job (one task per party,
-- grouped per Kuscia task), and every refusal of create with its code and
-- a message naming the field.
local decode = require("api.kuscia.decode")
local jobmap = require("api.kuscia.job")
local json = require("jobrt.json")
local model = require("jobrt.model")

local OPTS = {
  domains = { alice = true, bob = true },
  app_images = {
    img = { image = "host", command = { "run", "{{.TASK_ID}}", "--as={{ .KUSCIA_DOMAIN_ID }}/{{.KUSCIA_ROLE}}" },
            resources = { cpu = 100, memory = 256 << 20 }, env = { EXTRA = "1", KUSCIA_ROLE = "overridden" } },
    bare = { image = "alpine", command = { "true" }, env = {} },
  },
  task_id = function(job_id, i) return job_id .. "-gen" .. i end,
}

local function request(t, doc)
  local q, err = decode.request("CreateJobRequest", json.encode(doc))
  t.ok(q, err and err.message)
  return q
end

local function party(domain, role, resources)
  return { domain_id = domain, role = role or "", resources = resources }
end

local function task(alias, extra)
  local out = { alias = alias, app_image = "img", parties = { party("alice", "guest"), party("bob", "host") },
                task_input_config = '{"x":1}' }
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

local function create(t, doc)
  return jobmap.to_job(request(t, doc), OPTS)
end

local function refused(t, doc, pattern, code)
  local job, c, message = create(t, doc)
  t.eq(job, nil, pattern)
  t.eq(c, code or 11100, pattern)
  t.match(message, pattern)
end

return {
  { "one core task per party, grouped, with its input, identity and resources", function(t)
    local job = assert(create(t, {
      job_id = "job-1", initiator = "alice", max_parallelism = 0, custom_fields = { team = "a" },
      tasks = {
        task("psi", { task_id = "psi-1", priority = 100 }),
        task("train", { dependencies = { "psi" }, tolerable = true, app_image = "bare",
          parties = { party("bob", "host", { cpu = "2", memory = "1G" }) },
          schedule_config = { task_timeout_seconds = 0 } }),
      },
    }))
    t.eq(job.id, "job-1")
    t.eq(job.max_parallelism, 1, "max_parallelism <= 0 is 1")
    t.eq(job.labels, { team = "a" })
    t.eq(#job.tasks, 3)
    local a, b, c = job.tasks[1], job.tasks[2], job.tasks[3]
    t.eq({ a.alias, b.alias, c.alias }, { "psi.alice", "psi.bob", "train.bob" })
    t.eq({ a.group, b.group, c.group }, { "psi", "psi", "train" })
    t.eq(a.command, { "run", "psi-1", "--as=alice/guest" })
    t.eq(a.env, { TASK_INPUT_CONFIG = '{"x":1}', KUSCIA_DOMAIN_ID = "alice", KUSCIA_ROLE = "guest",
                  KUSCIA_JOB_ID = "job-1", KUSCIA_TASK_ID = "psi-1", EXTRA = "1" })
    t.eq(a.inputs, { { source = "inline", data = '{"x":1}', target = "/inputs/task_input_config.json" } })
    t.eq(a.resources, { cpu = 100, memory = 256 << 20 }, "the app image's")
    t.eq({ a.priority, a.tolerable, a.image, a.timeout }, { 100, false, "host", nil })
    t.eq(c.deps, { "psi.alice", "psi.bob" }, "every party of the dependency")
    t.eq(c.resources, { cpu = 2000, memory = 1000000000 }, "the party's own")
    t.eq({ c.tolerable, c.image, c.timeout }, { true, "alpine", 300 })
    t.eq(c.env.KUSCIA_TASK_ID, "job-1-gen2", "a generated task id")
    t.eq(OPTS.app_images.bare.resources, nil)
    -- What query echoes.
    t.eq(job.doc.initiator, "alice")
    t.eq(job.doc.max_parallelism, 1)
    t.eq(job.doc.tasks[1].task_id, "psi-1")
    t.eq(job.doc.tasks[1].units, { "psi.alice", "psi.bob" })
    t.eq(job.doc.tasks[2].schedule_config, { task_timeout_seconds = 300, resource_reserved_seconds = 30,
                                              resource_reallocation_interval_seconds = 30 })
    t.eq(job.doc.tasks[2].parties[1].resources, { cpu = "2", memory = "1G", bandwidth = "" })
    t.eq(job.doc.tasks[1].parties[1].resources, nil)
    -- And the core's model takes it as it is.
    t.ok(model.validate(job, { limits = model.limits() }))
  end },

  { "aliases the core cannot take are made safe, and stay unique", function(t)
    local job = assert(create(t, {
      job_id = "j", initiator = "alice",
      tasks = {
        task("a b/c"), task("a_b_c"), task(string.rep("x", 80)),
        task("-dash", { parties = { party("alice", "one"), party("alice", "two") } }),
      },
    }))
    local aliases, groups = {}, {}
    for _, ct in ipairs(job.tasks) do
      t.ok(#ct.alias <= 64 and ct.alias:find("^[%w_][%w%.%-_]*$"), ct.alias)
      t.eq(aliases[ct.alias], nil, "unique: " .. ct.alias)
      aliases[ct.alias] = true
      groups[ct.group] = (groups[ct.group] or 0) + 1
    end
    t.eq(job.tasks[1].alias, "a_b_c.alice")
    t.eq(job.tasks[3].alias, "a_b_c_2.alice")
    t.eq(job.tasks[7].alias, "_-dash.alice")
    t.eq(job.tasks[8].alias, "_-dash.alice.2")
    t.eq(job.tasks[8].env.KUSCIA_ROLE, "two")
    t.eq(groups["_-dash"], 2)
    t.ok(model.validate(job, { limits = model.limits() }))
    -- A made-up name that a later task's alias already is.
    local tricky = assert(create(t, { job_id = "j", initiator = "alice",
      tasks = { task("a_b_3"), task("a b"), task("a_b") } }))
    t.eq({ tricky.tasks[1].group, tricky.tasks[3].group, tricky.tasks[5].group }, { "a_b_3", "a_b", "a_b_3_2" })
  end },

  { "Kuscia's checks, in its order, each with 11100 and the field", function(t)
    local one = { task("a") }
    refused(t, { initiator = "alice", tasks = one }, "^job id can not be empty$")
    for _, id in ipairs({ "Upper", "under_score", "-a", "a-", string.rep("a", 64), "a b" }) do
      refused(t, { job_id = id, initiator = "alice", tasks = one }, '^Field "job_id" is invalid')
    end
    t.ok(create(t, { job_id = "a.b-c.1", initiator = "alice", tasks = one }), "dots pass, as Kuscia lets them")
    refused(t, { job_id = "j", tasks = one }, "^initiator can not be empty$")
    refused(t, { job_id = "j", initiator = "alice", max_parallelism = 129, tasks = one }, "max_parallelism 129")
    refused(t, { job_id = "j", initiator = "alice", tasks = json.array({}) }, "^tasks can not be empty$")
    refused(t, { job_id = "j", initiator = "alice", tasks = { task("a"), task("") } },
      "^task alias can not be empty on tasks%[1%]$")
    refused(t, { job_id = "j", initiator = "alice", tasks = { task("a", { parties = json.array({}) }) } },
      "^parties can not be empty on tasks%[0%]$")
    refused(t, { job_id = "j", initiator = "alice", tasks = { task("a", { parties = { party("alice"), party("") } }) } },
      "party domain id can not be empty on tasks%[0%]%.parties%[1%]")
    refused(t, { job_id = "j", initiator = "alice", custom_fields = { [string.rep("k", 39)] = "v" }, tasks = one },
      "custom_fields: key")
    refused(t, { job_id = "j", initiator = "alice", custom_fields = { k = string.rep("v", 64) }, tasks = one },
      'custom_fields%["k"%]')
  end },

  { "the DAG: unique aliases, known dependencies, no cycle", function(t)
    local function job(tasks) return { job_id = "j", initiator = "alice", tasks = tasks } end
    refused(t, job({ task("a"), task("b"), task("a") }), '^tasks%[2%]%.alias: "a" is also the alias of tasks%[0%]')
    refused(t, job({ task("a", { dependencies = { "zz" } }) }),
      '^tasks%[0%]%.dependencies: "zz" is not the alias of a task of this job')
    refused(t, job({ task("a", { dependencies = { "a" } }) }), "cycle: a %-> a$")
    refused(t, job({ task("a", { dependencies = { "c" } }), task("b", { dependencies = { "a" } }),
                     task("c", { dependencies = { "b" } }) }), "cycle: a %-> c %-> b %-> a$")
    -- An empty dependency (as the seed's query shows) names nothing.
    local ok = assert(create(t, job({ task("a", { dependencies = { "" } }), task("b", { dependencies = { "a" } }) })))
    t.eq(ok.tasks[1].deps, {})
    t.eq(ok.doc.tasks[1].dependencies, { "" })
  end },

  { "what this deployment refuses: foreign domains, unknown app images, bad ids and resources", function(t)
    local function job(tasks) return { job_id = "j", initiator = "alice", tasks = tasks } end
    refused(t, job({ task("a", { parties = { party("alice"), party("carol") } }) }),
      '^tasks%[0%]%.parties%[1%]%.domain_id: domain "carol" is not hosted here %(surfaces%.kuscia%.domains: alice, bob%)')
    refused(t, job({ task("a", { app_image = "secretflow" }) }),
      '^tasks%[0%]%.app_image: "secretflow" is not an app image of this deployment %(surfaces%.kuscia%.app_images: bare, img%)')
    refused(t, job({ task("a", { task_id = "Bad_Id" }) }), 'Field "tasks%[0%]%.task_id" is invalid')
    refused(t, job({ task("a", { task_id = "t" }), task("b", { task_id = "t" }) }),
      'tasks%[1%]%.task_id: "t" is also the task_id of tasks%[0%]')
    refused(t, job({ task("a", { parties = { party("alice", "", { cpu = "lots" }) } }) }),
      '^tasks%[0%]%.parties%[0%]%.resources%.cpu: invalid cpu "lots"')
    refused(t, job({ task("a", { parties = { party("alice", "", { memory = "1 parsec" }) } }) }),
      "^tasks%[0%]%.parties%[0%]%.resources%.memory: invalid size")
  end },

  { "argv templates name only what is known", function(t)
    t.eq(jobmap.unknown_placeholders({ "a", "{{.TASK_ID}}", "{{ .KUSCIA_ROLE }}x" }), nil)
    t.eq(jobmap.unknown_placeholders({ "{{.TASK_ID}}{{.NOPE}}", "{{OTHER}}" }), { "NOPE", "OTHER" })
  end },
}
