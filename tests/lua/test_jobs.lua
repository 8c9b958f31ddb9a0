-- jobrt.jobs: the simple job manager on top of jobrt.core.
local core = require("jobrt.core")
local jobs = require("jobrt.jobs")

local function open(t)
  local dir = os.tmpname()
  os.remove(dir)
  t.ok(core.open({ data_dir = dir }))
  t.cleanup = function()
    core.close()
    os.execute("rm -rf '" .. dir .. "'")
  end
end

return {
  { "schema: the seed's fields with type, required, unique, default, options", function(t)
    local text = { type = "string", required = false, unique = false, default = "" }
    t.eq(jobs.schema(), {
      id = { type = "string", required = true, unique = true },
      name = text, user = text, request = text, result = text, messages = text,
      status = { type = "string", required = false, unique = false, default = "idle",
        options = { "idle", "pending", "running", "finished", "error" } },
    })
    -- A fresh copy each time: a caller cannot change the next one's.
    jobs.schema().status.options[1] = "changed"
    t.eq(jobs.schema().status.options[1], "idle")
  end },

  { "status_map: statuses and their core states", function(t)
    local m = jobs.status_map()
    t.eq(m.statuses, { "idle", "pending", "running", "finished", "error" })
    t.eq(m.to_core, { idle = "created", pending = "queued", running = "running",
      finished = "succeeded", error = "failed" })
    t.eq(m.from_core.awaiting_approval, "pending")
    t.eq(m.from_core.canceled, "error")
    for _, status in ipairs(m.statuses) do
      t.eq(m.from_core[m.to_core[status]], status, status .. " round-trips")
    end
  end },

  { "absent fields read as the schema's defaults", function(t)
    open(t)
    local job = jobs.create()
    t.eq({ job.name, job.user, job.request, job.result, job.status }, { "", "", "", "", "idle" })
    t.eq(jobs.results(job.id), "")
  end },

  { "create, find, set states, result: strings in and out", function(t)
    open(t)
    local job = jobs.create("resize", "alice", '{"size":3}')
    t.eq({ job.name, job.user, job.status, job.messages }, { "resize", "alice", "idle", "" })
    t.eq(job.request, '{"size":3}')
    local found, status = jobs.find(job.id)
    t.eq(status, "idle")
    t.eq(found.id, job.id)
    t.eq(found.request, '{"size":3}', "the text as given, not decoded")
    t.eq(jobs.set_pending(job.id).status, "pending")
    t.eq(jobs.get(job.id, "pending").id, job.id)
    local _, _, code = jobs.get(job.id, "running")
    t.eq(code, "CONFLICT")
    t.err(function() jobs.get(job.id, "bogus") end, "invalid job status")
    t.eq(jobs.set_running(job.id).status, "running")
    -- data can change while running; messages is one text, replaced by set
    local j2 = jobs.set(job.id, { messages = "half way" })
    t.eq(j2.status, "running")
    t.eq(j2.messages, "half way")
    t.eq(jobs.set(job.id, { messages = "half way\nthree quarters" }).messages, "half way\nthree quarters")
    local done = jobs.update_result(job.id, '{"url":"/out"}')
    t.eq(done.status, "finished")
    t.eq(jobs.results(job.id), '{"url":"/out"}')
    t.eq(core.get(job.id).state, "succeeded")
  end },

  { "every field given must be a string, as the schema says", function(t)
    open(t)
    local function refused(want, job, err, code)
      t.eq(job, nil)
      t.eq(code, "INVALID")
      t.match(err, want)
    end
    refused("^request must be a string %(JSON text", jobs.create("a", "u", { size = 3 }))
    refused("^result must be a string %(JSON text", jobs.create("a", "u", nil, 42))
    refused("^name must be a string, got a number", jobs.create(7))
    refused("^user must be a string, got a table", jobs.create("a", {}))
    local job = jobs.create("a", "u")
    refused("^messages must be a string, got a table", jobs.set(job.id, { messages = { "x" } }))
    refused("^result must be a string", jobs.set_finished(job.id, 42))
    refused("^message must be a string", jobs.set_error(job.id, { "x" }))
    t.eq(jobs.find(job.id).status, "idle", "nothing changed")
  end },

  { "set_error adds its message to the messages as a line", function(t)
    open(t)
    local job = jobs.create("a", "u")
    jobs.set(job.id, { messages = "started" })
    local failed = jobs.set_error(job.id, "disk full")
    t.eq({ failed.status, failed.messages }, { "error", "started\ndisk full" })
    local other = jobs.create("b", "u")
    t.eq(jobs.set_error(other.id, "no input").messages, "no input")
    t.eq(core.get(other.id).error, "no input")
  end },

  { "lists and delete", function(t)
    open(t)
    local a = jobs.create("a", "u")
    local b = jobs.create("b", "u")
    local c = jobs.create("c", "u")
    jobs.set_pending(b.id)
    jobs.set_running(c.id)
    t.eq(#jobs.all(), 3)
    t.eq(jobs.pending()[1].id, b.id)
    t.eq(jobs.running()[1].id, c.id)
    t.eq(#jobs.finished(), 0)
    jobs.set_finished(a.id, "42")
    t.eq(jobs.finished()[1].result, "42")
    t.ok(jobs.delete(c.id))
    t.eq(#jobs.all(), 2)
    local _, _, code = jobs.find(c.id)
    t.eq(code, "NOT_FOUND")
    local _, _, c2 = jobs.set(a.id, nil, "error")
    t.eq(c2, nil)
    t.eq(jobs.find(a.id).status, "error")
  end },
}
