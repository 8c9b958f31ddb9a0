-- openEO processing: synchronous evaluation (POST /result) and batch jobs
-- (create, list, describe, change, delete, estimate, start and stop), which
-- go down through the submission pipeline (ctx.submit, ctx.pipeline).
local core = require("jobrt.core")
local json = require("jobrt.json")
local async = require("jobrt.async")
local eval = require("api.openeo.eval")
local common = require("api.openeo.common")

local M = {}

local NULL, is_object, status_of = common.NULL, common.is_object, common.status_of
local owner_of, iso_duration = common.owner_of, common.iso_duration
local checked_process, body_object, optional_string = common.checked_process, common.body_object, common.optional_string
local budget_of, log_level_of = common.budget_of, common.log_level_of

function M.routes(r, s)
  local ctx, url, visible, describe, task_of = s.ctx, s.url, s.visible, s.describe, s.task_of
  local estimate, estimate_context = s.estimate, s.estimate_context
  local sync_timeout, currency = s.sync_timeout, s.currency

  r:post("/result", function(req, res)
    local body = body_object(ctx, req)
    budget_of(ctx, body)
    local process = checked_process(ctx, body.process)
    local ok, value, err = async.call(eval.evaluate, { deadline = sync_timeout, memory = 256 * 1024 * 1024 },
      { process = process })
    if not ok then
      if err == "deadline" then
        ctx.fail(408, "RequestTimeout", string.format(
          "The process took more than %g s; run it as a batch job instead.", sync_timeout))
      elseif err == "memory" then
        ctx.fail(400, "ProcessGraphComplexity", "The process needs too much memory for synchronous processing.")
      end
      error(value, 0)
    end
    if value == nil then
      ctx.fail(err.status or 400, err.code or "Internal", err.message or "evaluation failed")
    end
    local text, eerr = eval.encode(value)
    if not text then ctx.fail(500, eerr.code or "Internal", eerr.message) end
    res:header("Content-Type", "application/json")
    res:header("OpenEO-Costs", "0")
    res:send(text, 200)
  end)

  ---------------------------------------------------------------------------
  -- Batch jobs

  r:post("/jobs", function(req, res)
    local body = body_object(ctx, req)
    local process = checked_process(ctx, body.process)
    local doc = {
      title = optional_string(ctx, body, "title"),
      description = optional_string(ctx, body, "description"),
      plan = optional_string(ctx, body, "plan"),
      budget = budget_of(ctx, body),
      log_level = log_level_of(ctx, body),
      process = process,
    }
    local job = ctx.submit({ title = doc.title, doc = doc, tasks = { task_of(process, doc.log_level) } },
      { req = req, owner = owner_of(req), estimate = estimate_context(doc) })
    res:header("Location", url(req, "/jobs/" .. job.id))
    res:header("OpenEO-Identifier", job.id)
    res:send("", 201)
  end)

  r:get("/jobs", function(req, res)
    local limit, after = req:int("limit", { min = 1 }), req:int("after")
    local page, err = core.list({ owner = owner_of(req), surface = "openeo", limit = limit, after = after })
    if not page then ctx.fail(500, "Internal", err) end
    local jobs = {}
    for i, job in ipairs(page.jobs) do jobs[i] = describe(req, job, false) end
    local links = { { rel = "self", href = url(req, "/jobs"), type = "application/json" } }
    if page.next then
      links[#links + 1] = {
        rel = "next", type = "application/json",
        href = url(req, "/jobs?limit=" .. (limit or 100) .. "&after=" .. page.next),
      }
    end
    res:json({ jobs = json.array(jobs), links = json.array(links) })
  end)

  r:get("/jobs/{job_id}", function(req, res)
    res:json(describe(req, visible(req, req.params.job_id), true))
  end)

  r:patch("/jobs/{job_id}", function(req, res)
    local id = req.params.job_id
    local body = body_object(ctx, req)
    local job = visible(req, id)
    local status = status_of(job)
    if status == "queued" or status == "running" then
      ctx.fail(400, "JobLocked", "The job is " .. status .. "; stop it before changing it.")
    end
    local doc = is_object(job.doc) and job.doc or {}
    local changes, any = {}, false
    for _, key in ipairs({ "title", "description", "plan" }) do
      if body[key] ~= nil then
        doc[key] = optional_string(ctx, body, key) or NULL
        any = true
      end
    end
    if body.budget ~= nil then doc.budget, any = budget_of(ctx, body) or NULL, true end
    if body.log_level ~= nil then doc.log_level, any = log_level_of(ctx, body) or NULL, true end
    if body.process ~= nil then
      doc.process = checked_process(ctx, body.process)
      changes.tasks = { task_of(doc.process, doc.log_level ~= NULL and doc.log_level or nil) }
      any = true
    end
    for k in pairs(body) do
      if k ~= "title" and k ~= "description" and k ~= "plan" and k ~= "budget" and k ~= "log_level"
        and k ~= "process" then
        ctx.fail(400, "PropertyNotEditable", string.format("The property '%s' is read-only.", k))
      end
    end
    if not any then ctx.fail(400, "NoDataForUpdate", "No data specified to be updated.") end
    for k, v in pairs(doc) do if v == NULL then doc[k] = nil end end
    changes.doc = doc
    changes.title = doc.title or NULL
    -- A job just stopped is still locked in the core while its task ends.
    local ok, f
    for _ = 1, 100 do
      ok, f = ctx.pipeline:update(id, changes)
      if ok or f.core_code ~= "LOCKED" then break end
      async.sleep(0.05)
    end
    if not ok then
      if f.core_code == "LOCKED" then ctx.fail(400, "JobLocked", "The job is queued or running.") end
      ctx.fail(f.status, f.code, f.message)
    end
    res:send("", 204)
  end)

  -- Run op until the job's tasks have stopped (a stop takes a moment).
  local function settled(op, id, ...)
    local v, err, code
    for _ = 1, 100 do
      v, err, code = op(id, ...)
      if v or code ~= "CONFLICT" or not tostring(err):find("still stopping", 1, true) then break end
      async.sleep(0.05)
    end
    return v, err, code
  end

  r:delete("/jobs/{job_id}", function(req, res)
    local id = req.params.job_id
    local job = visible(req, id)
    local status = status_of(job)
    if status == "queued" or status == "running" then
      local ok, err = core.stop(id, "deleted")
      if not ok then ctx.fail(500, "Internal", err) end
    end
    local ok, err = settled(core.delete, id)
    if not ok then ctx.fail(500, "Internal", err) end
    res:send("", 204)
  end)

  r:get("/jobs/{job_id}/estimate", function(req, res)
    local job = visible(req, req.params.job_id)
    local est, err = estimate(job)
    if not est then
      ctx.fail(500, err and err.code or "EstimateComplexity", err and err.message or "no estimate")
    end
    local out = { downloads_included = NULL }
    if est.costs ~= nil then out.costs = est.costs end
    if est.duration ~= nil then out.duration = iso_duration(est.duration) end
    if est.size ~= nil then out.size = math.floor(est.size) end
    if out.costs == nil and out.duration == nil and out.size == nil then
      ctx.fail(500, "EstimateComplexity", "The estimator returned nothing.")
    end
    res:json(out)
  end)

  r:post("/jobs/{job_id}/results", function(req, res)
    local id = req.params.job_id
    local job = visible(req, id)
    local status = status_of(job)
    if status == "queued" or status == "running" then return res:send("", 202) end
    local doc = is_object(job.doc) and job.doc or {}
    if type(doc.budget) == "number" then
      local est = estimate(job)
      if est and type(est.costs) == "number" and est.costs > doc.budget then
        ctx.fail(402, "PaymentRequired", string.format(
          "The job is estimated to cost %s%s, more than its budget of %s.", est.costs,
          currency and (" " .. currency) or "", doc.budget))
      end
    end
    -- The deployment's approval policies decide here: a rejected job is
    -- `error` (the reason in its logs), a held one `queued` until approved.
    local ok, f = ctx.pipeline:start(id, { req = req, principal = req.principal, request_id = req.id })
    if not ok then
      if f.core_code == "CONFLICT" then ctx.fail(400, "JobLocked", f.message) end
      ctx.fail(f.status, f.code, f.message)
    end
    res:send("", 202)
  end)

  r:delete("/jobs/{job_id}/results", function(req, res)
    local id = req.params.job_id
    local job = visible(req, id)
    local status = status_of(job)
    if status == "queued" or status == "running" then
      local ok, err = core.stop(id, "stopped by " .. (owner_of(req) or "the owner"))
      if not ok then ctx.fail(500, "Internal", err) end
    end
    res:send("", 204)
  end)
end

return M
