-- openEO logs and results: a job's log entries (the evaluator's error lines
-- with their openEO codes), its STAC item through the publisher plugin, and
-- the signed links to the item, the process and the assets.
local core = require("jobrt.core")
local json = require("jobrt.json")
local common = require("api.openeo.common")

local M = {}

local NULL, TASK, is_object, status_of = common.NULL, common.TASK, common.is_object, common.status_of
local rfc3339, LEVELS, CORE_LEVEL = common.rfc3339, common.LEVELS, common.CORE_LEVEL

function M.routes(r, s)
  local ctx, url, signed, visible, signer = s.ctx, s.url, s.signed, s.visible, s.signer
  local publication, url_ttl = s.publication, s.url_ttl

  -- A core log entry as an openEO one; the evaluator's error line (JSON on
  -- standard error) becomes an error entry with its openEO code.
  local function log_entry(l)
    local e = { id = tostring(l.id), level = l.level == "warn" and "warning" or l.level,
                message = l.message, time = l.time }
    if type(l.message) == "string" and l.message:match("^%s*{") then
      local ok, v = pcall(json.decode, l.message)
      if ok and is_object(v) and type(v.code) == "string" and type(v.message) == "string" then
        e.code, e.message, e.level = v.code, v.message, "error"
        if type(v.node) == "string" then
          e.path = json.array({ { node_id = v.node, process_id = v.process } })
        end
      end
    end
    if l.data ~= nil then e.data = l.data end
    return e
  end

  r:get("/jobs/{job_id}/logs", function(req, res)
    local id = req.params.job_id
    local job = visible(req, id)
    local q = req.query
    local level = q.level ~= "" and q.level or nil
    if level and not LEVELS[level] then
      ctx.fail(400, "ProcessInvalid", "level must be one of error, warning, info, debug.")
    end
    local doc = is_object(job.doc) and job.doc or {}
    local min = level or "debug"
    if type(doc.log_level) == "string" and LEVELS[doc.log_level] and LEVELS[doc.log_level] > LEVELS[min] then
      min = doc.log_level
    end
    local after = req:int("offset") or 0
    local limit = req:int("limit", { min = 1 })
    -- Stored warnings may turn out to be errors (the evaluator's), so the
    -- store filters one level lower than asked and the rest is done here.
    local store_level = CORE_LEVEL[min == "error" and "warning" or min]
    local logs, err = core.logs(id, { after = after, level = store_level, limit = limit or 1000 })
    if not logs then ctx.fail(500, "Internal", err) end
    local out = {}
    local last
    for _, l in ipairs(logs) do
      local e = log_entry(l)
      if LEVELS[e.level] >= LEVELS[min] then out[#out + 1] = e end
      last = l.id
    end
    local links = {}
    if limit and #logs >= limit and last then
      local qs = "?offset=" .. last .. "&limit=" .. limit .. (level and ("&level=" .. level) or "")
      links[1] = { rel = "next", href = url(req, "/jobs/" .. id .. "/logs" .. qs), type = "application/json" }
    end
    res:json({ level = min, logs = json.array(out), links = json.array(links) })
  end)

  -- The entry that says why the job failed: the evaluator's own error
  -- when there is one, else the scheduler's.
  local function error_entry(id)
    local logs = core.logs(id, { level = "warn", limit = 1000 }) or {}
    local best
    for _, l in ipairs(logs) do
      local e = log_entry(l)
      if e.level == "error" and (e.code or not (best and best.code)) then best = e end
    end
    return best or { id = "0", level = "error", message = "The job failed." }
  end

  ---------------------------------------------------------------------------
  -- Results

  local function item_for(req, job)
    local status = status_of(job)
    local doc = is_object(job.doc) and job.doc or {}
    local files = ctx.outputs:list(job.id, TASK) or {}
    local dir = ctx.outputs:dir(job.id, TASK)
    for _, f in ipairs(files) do f.path = dir .. "/" .. f.name end
    local base = "/jobs/" .. job.id .. "/results/"
    -- Only finished results are uploaded (partial ones are described).
    local item, f = publication:publish(job, TASK, files, {
      url = function(name) return signed(req, base .. "assets/" .. name) end,
      process_url = signed(req, base .. "process"),
      item_url = signed(req, base .. "item"),
      expires = rfc3339(os.time() + url_ttl),
      now = rfc3339(os.time()),
      status = status,
      title = doc.title, description = doc.description,
    }, { upload = status == "finished" })
    if not item then
      ctx.fail(502, "ResultsUnavailable", string.format("Publishing the results failed: %s: %s",
        tostring(f.code), tostring(f.message)))
    end
    return item
  end

  local function results_of(req, job, partial)
    local status = status_of(job)
    if status == "error" and not partial then
      return nil, error_entry(job.id)
    end
    if status ~= "finished" and not partial then
      ctx.fail(400, "JobNotFinished", "The batch job has not finished computing its results yet.")
    end
    return item_for(req, job)
  end

  r:get("/jobs/{job_id}/results", function(req, res)
    local job = visible(req, req.params.job_id)
    local partial = req.query.partial == "true"
    local item, failure = results_of(req, job, partial)
    if not item then return res:json(failure, 424) end
    res:header("OpenEO-Costs", "0")
    res:json(item)
  end)

  -- Signed links: no credentials, but an unaltered, unexpired signature.
  local function check_signature(req)
    local ok, status, code, message = signer:verify("GET", req.path, req.query)
    if not ok then ctx.fail(status, code, message) end
  end

  local function signed_job(req)
    check_signature(req)
    local job = core.get(req.params.job_id)
    if not job or job.surface ~= "openeo" then
      ctx.fail(404, "JobNotFound", string.format("The batch job '%s' does not exist.", req.params.job_id))
    end
    return job
  end

  r:get("/jobs/{job_id}/results/item", function(req, res)
    local job = signed_job(req)
    local item, failure = results_of(req, job, false)
    if not item then return res:json(failure, 424) end
    res:json(item)
  end, { public = true })

  r:get("/jobs/{job_id}/results/process", function(req, res)
    local job = signed_job(req)
    local doc = is_object(job.doc) and job.doc or {}
    res:json({ process = doc.process or NULL })
  end, { public = true })

  r:get("/jobs/{job_id}/results/assets/{name}", function(req, res)
    local job = signed_job(req)
    if status_of(job) ~= "finished" then
      ctx.fail(400, "JobNotFinished", "The batch job has no results at the moment.")
    end
    local data, err, code = ctx.outputs:read(job.id, TASK, req.params.name)
    if not data then
      if code == "NOT_FOUND" or code == "INVALID" then
        ctx.fail(404, "FileNotFound", string.format("File '%s' does not exist.", req.params.name))
      end
      ctx.fail(500, "StorageFailure", err)
    end
    local ext = req.params.name:match("%.(%w+)$")
    res:header("Content-Type", ext == "json" and "application/json" or "application/octet-stream")
    res:header("OpenEO-Costs", "0")
    res:send(data, 200)
  end, { public = true })
end

return M
