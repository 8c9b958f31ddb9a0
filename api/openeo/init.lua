-- The openEO surface (API 1.2.0), mounted at /openeo/1.2 with
-- /.well-known/openeo at the host's root. It translates openEO documents to
-- the core job model and back: a batch job is a core job with one sandboxed
-- task that runs `jobrt eval` on the process (the daemon's own binary bound
-- read-only into the sandbox); POST /result evaluates in the request,
-- bounded. Batch jobs go down through the submission pipeline (ctx.submit,
-- ctx.pipeline: validation, `approval:` policies, the estimator); results go
-- through the publisher plugin the deployment names (`publisher:`).
local core = require("jobrt.core")
local json = require("jobrt.json")
local units = require("jobrt.units")
local async = require("jobrt.async")
local graph = require("api.openeo.graph")
local eval = require("api.openeo.eval")
local processes = require("api.openeo.processes")

local M = { name = "openeo" }

-- The options of `surfaces.openeo` (jobrt.config checks them and fills in
-- the defaults, normalised: seconds, millicores, bytes).
M.schema = {
  approval = { type = "list", of = { type = "plugin" }, default = {},
    description = "approval policies run on every batch job, in order" },
  estimator = { type = "plugin", default = "estimate.price_table" },
  publisher = { type = "plugin", default = "publish.local" },
  job_timeout = { type = "duration", default = 600, min = 1 },
  sync_timeout = { type = "duration", default = 3, min = 0.001 },
  task_cpu = { type = "cpu", default = 1000, min = 1 },
  task_memory = { type = "bytes", default = 1024 * 1024 * 1024, min = 1 },
  backend_version = { type = "string", default = "jobrt" },
  id = { type = "string", default = "jobrt-openeo" },
  title = { type = "string", default = "jobrt openEO back-end" },
  description = { type = "string" },
  collections = { type = "list", of = { type = "map" }, default = {} },
}

-- `jobrt eval`: what a batch job's task runs.
M.commands = { eval = eval.command }

local API_VERSION = "1.2.0"
local NULL = json.null
local TASK = "graph"
local EVAL_BIN = "/.jobrt/jobrt"
local GRAPH_FILE = "/inputs/process.json"
local RESULT_FILE = "result.json"

-- openEO's bearer credentials are "PROVIDER//TOKEN"; only tokens from
-- /credentials/basic ("basic//TOKEN") exist here. A bare token is taken too.
local function bearer_token(credentials)
  local provider, rest = credentials:match("^([%w%-_]*)//(.*)$")
  if not provider then return credentials end
  if provider ~= "basic" then
    return nil, 403, "TokenInvalid", "unsupported authentication provider: " .. provider
  end
  return rest
end

-- Bearer tokens from /credentials/basic, and Basic itself for scripts.
M.auth = { { "bearer", parse = bearer_token }, "basic" }

-- The estimator plugin that prices jobs when the deployment names none.
M.estimator = "estimate.price_table"

local EXPOSE = "Link, Location, OpenEO-Costs, OpenEO-Identifier"

-- CORS on every answer of the surface; OPTIONS gets the allowed methods.
function M.headers(req, allow)
  local h = {
    ["Access-Control-Allow-Origin"] = req.headers.origin or "*",
    ["Access-Control-Expose-Headers"] = EXPOSE,
    ["Access-Control-Allow-Credentials"] = "true",
  }
  if allow then
    h["Access-Control-Allow-Methods"] = table.concat(allow, ", ")
    h["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
    h["Access-Control-Max-Age"] = "600"
  end
  return h
end

-- The runtime's own codes, in openEO's words.
local CODES = {
  InternalError = "Internal", Timeout = "RequestTimeout", OutOfMemory = "Internal",
  MethodNotAllowed = "FeatureUnsupported", BadRequest = "ProcessInvalid",
  UnsupportedMediaType = "ProcessInvalid", NotFound = "NotFound", Conflict = "JobLocked",
  Locked = "JobLocked", Unavailable = "InfrastructureBusy", PolicyFailed = "Internal",
  SignatureMissing = "CredentialsInvalid", SignatureInvalid = "CredentialsInvalid",
  LinkExpired = "ResultLinkExpired", StoreUnavailable = "InfrastructureBusy",
}

function M.error_body(status, code, message, req)
  local body = { code = CODES[code] or code, message = message, links = json.array({}) }
  if req and req.id then body.id = req.id end
  if status == 405 then body.code = "FeatureUnsupported" end
  return body
end

local function is_null(v) return v == nil or v == NULL end

local function is_object(v) return type(v) == "table" and v ~= NULL and not json.is_array(v) end

---------------------------------------------------------------------------
-- States

-- core state -> openEO status. A job stopped before it ran is back to
-- `created`; one stopped while running is `canceled`.
local STATUS = {
  created = "created", suspended = "created",
  awaiting_approval = "queued", queued = "queued",
  running = "running",
  succeeded = "finished",
  failed = "error", rejected = "error",
}

local function status_of(job)
  if job.state == "canceled" then
    return job.started_at and "canceled" or "created"
  end
  return STATUS[job.state] or "error"
end

local function progress_of(job, status)
  if status == "finished" then return 100 end
  if status == "created" or status == "queued" then return 0 end
  local done, total = 0, #(job.tasks or {})
  for _, t in ipairs(job.tasks or {}) do
    if t.state == "succeeded" or t.state == "skipped" then done = done + 1 end
  end
  if total == 0 then return 0 end
  local p = math.floor(done * 100 / total)
  if status == "running" then p = math.min(p, 99) end
  return p
end

---------------------------------------------------------------------------
-- Helpers

local function base_url(req)
  local host = req.headers.host or "127.0.0.1"
  return (req.tls and "https://" or "http://") .. host
end

local function owner_of(req)
  local p = req.principal
  return type(p) == "table" and p.name or nil
end

local function iso_duration(seconds)
  seconds = math.max(0, math.ceil(seconds))
  local h, m, s = seconds // 3600, (seconds % 3600) // 60, seconds % 60
  local out = "PT"
  if h > 0 then out = out .. h .. "H" end
  if m > 0 then out = out .. m .. "M" end
  if s > 0 or out == "PT" then out = out .. s .. "S" end
  return out
end

local function rfc3339(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

-- Walk a process graph (and its child graphs): node count and process ids.
local function complexity_of(pg)
  local nodes, ids = 0, {}
  local function walk_value(v, depth)
    if type(v) ~= "table" or depth > 60 then return end
    if is_object(v.process_graph) then
      for _, node in pairs(v.process_graph) do
        if type(node) == "table" then
          nodes = nodes + 1
          if type(node.process_id) == "string" then ids[node.process_id] = true end
          walk_value(node.arguments, depth + 1)
        end
      end
      return
    end
    for _, x in pairs(v) do walk_value(x, depth + 1) end
  end
  walk_value({ process_graph = pg }, 0)
  return { nodes = nodes, processes = ids }
end

-- The "process" member of a body: validated, or the request fails.
local function checked_process(ctx, process)
  if not is_object(process) then
    ctx.fail(400, "ProcessGraphMissing", "The request has no process object with a process_graph.")
  end
  if not is_object(process.process_graph) then
    ctx.fail(400, "ProcessGraphMissing", "The process has no process_graph object.")
  end
  local opts = {}
  if type(process.parameters) == "table" and process.parameters ~= NULL then
    opts.parameters = process.parameters
  end
  local ok, err = graph.validate(process.process_graph, processes, opts)
  if not ok then
    ctx.fail(err.status or 400, err.code or "ProcessGraphInvalid", err.message or "invalid process graph")
  end
  return process
end

local function body_object(ctx, req)
  if req.body == "" then ctx.fail(400, "ProcessInvalid", "The request body is empty; a JSON object was expected.") end
  local ok, v = pcall(json.decode, req.body)
  if not ok or v == nil then
    ctx.fail(400, "ProcessInvalid", "The request body is not valid JSON.")
  end
  if not is_object(v) then ctx.fail(400, "ProcessInvalid", "The request body must be a JSON object.") end
  return v
end

local function optional_string(ctx, body, key)
  local v = body[key]
  if is_null(v) then return nil end
  if type(v) ~= "string" then ctx.fail(400, "ProcessInvalid", key .. " must be a string or null.") end
  return v
end

local function budget_of(ctx, body)
  local v = body.budget
  if is_null(v) then return nil end
  if type(v) ~= "number" or v < 0 or v ~= v then
    ctx.fail(400, "BudgetInvalid", "The budget must be a non-negative number or null.")
  end
  return v
end

local LEVELS = { debug = 1, info = 2, warning = 3, error = 4 }
local CORE_LEVEL = { debug = "debug", info = "info", warning = "warn", error = "error" }

local function log_level_of(ctx, body)
  local v = body.log_level
  if is_null(v) then return nil end
  if type(v) ~= "string" or not LEVELS[v] then
    ctx.fail(400, "ProcessInvalid", "log_level must be one of error, warning, info, debug.")
  end
  return v
end

---------------------------------------------------------------------------
-- The surface

function M.routes(r, ctx)
  local cfg = ctx.config or {}
  local mount = ctx.mount
  local signer = ctx.signer

  local function plugin(kind, name)
    if name == nil then return nil, {} end
    local mod, opts = ctx.plugin(name)
    if not mod then error(string.format("openeo %s: %s", kind, tostring(opts)), 0) end
    return mod, opts
  end
  -- The estimator is the pipeline's (ctx.estimate); its options name the currency.
  local estimator_opts = ctx.pipeline.estimator_options or {}
  local publisher, publisher_opts = plugin("publisher", cfg.publisher or "publish.local")
  if type(publisher) ~= "table" or type(publisher.publish) ~= "function" then
    error("openeo publisher: the plugin must return {publish = function(job, task, files, ctx)}", 0)
  end
  -- The schema above checked these and filled in their defaults.
  local url_ttl = tonumber(publisher_opts.url_ttl) or 3600
  local job_timeout, sync_timeout = cfg.job_timeout, cfg.sync_timeout
  local task_cpu, task_memory = cfg.task_cpu, cfg.task_memory
  local currency = estimator_opts.currency

  local function url(req, path) return base_url(req) .. mount .. path end

  local function signed(req, path)
    local full = mount .. path
    return base_url(req) .. full .. "?" .. signer:sign("GET", full, url_ttl)
  end

  -- The openEO job of the caller, or JobNotFound (also for someone else's).
  local function visible(req, id)
    local job = core.get(id)
    if not job or job.surface ~= "openeo" or not ctx.owns(req, job) then
      ctx.fail(404, "JobNotFound", string.format("The batch job '%s' does not exist.", id))
    end
    return job
  end

  local function job_links(req, job)
    return json.array({
      { rel = "monitor", href = url(req, "/jobs/" .. job.id .. "/logs"), type = "application/json" },
      { rel = "result", href = url(req, "/jobs/" .. job.id .. "/results"), type = "application/json" },
    })
  end

  local function usage_of(job)
    local cpu, mem, wall = 0, 0, 0
    local any = false
    for _, t in ipairs(job.tasks or {}) do
      local u = t.usage
      if type(u) == "table" then
        any = true
        cpu = cpu + (tonumber(u.cpu_ms) or 0) / 1000
        wall = wall + (tonumber(u.wall_ms) or 0) / 1000
        mem = math.max(mem, (tonumber(u.max_rss_bytes) or 0) / (1024 * 1024))
      end
    end
    if not any then return nil end
    return {
      cpu = { value = cpu, unit = "cpu-seconds" },
      duration = { value = wall, unit = "seconds" },
      memory = { value = mem, unit = "mb" },
    }
  end

  local function describe(req, job, full)
    local doc = is_object(job.doc) and job.doc or {}
    local status = status_of(job)
    local out = {
      id = job.id,
      title = doc.title or NULL,
      description = doc.description or NULL,
      status = status,
      progress = progress_of(job, status),
      created = job.created_at,
      updated = job.updated_at,
      plan = doc.plan or NULL,
      budget = doc.budget or NULL,
      log_level = doc.log_level or "info",
      links = job_links(req, job),
    }
    if full then
      out.process = doc.process
      out.usage = usage_of(job)
    end
    return out
  end

  local function task_of(process, log_level)
    local text = json.encode({ process = process })
    return {
      alias = TASK,
      image = "host",
      command = { EVAL_BIN, "eval", GRAPH_FILE, "-o", "/outputs/" .. RESULT_FILE },
      inputs = {
        { source = "jobrt", target = EVAL_BIN },
        { source = "inline", data = text, target = GRAPH_FILE },
      },
      env = { JOBRT_LOG_LEVEL = log_level or "info" },
      resources = { cpu = task_cpu, memory = task_memory },
      timeout = job_timeout,
    }
  end

  -- What the estimator learns of a job besides the job: its process.
  local function estimate_context(doc)
    local pg = is_object(doc.process) and doc.process.process_graph or {}
    return { complexity = complexity_of(pg) }
  end

  local function estimate(job)
    return ctx.estimate(job, estimate_context(is_object(job.doc) and job.doc or {}))
  end

  ---------------------------------------------------------------------------
  -- Discovery

  r:root("GET", "/.well-known/openeo", function(req, res)
    res:json({ versions = json.array({
      { url = url(req, ""), api_version = API_VERSION, production = true },
    }) })
  end, { public = true })

  local ENDPOINTS = {
    { "/", { "GET" } },
    { "/conformance", { "GET" } },
    { "/credentials/basic", { "GET" } },
    { "/me", { "GET" } },
    { "/file_formats", { "GET" } },
    { "/processes", { "GET" } },
    { "/collections", { "GET" } },
    { "/result", { "POST" } },
    { "/jobs", { "GET", "POST" } },
    { "/jobs/{job_id}", { "GET", "PATCH", "DELETE" } },
    { "/jobs/{job_id}/estimate", { "GET" } },
    { "/jobs/{job_id}/logs", { "GET" } },
    { "/jobs/{job_id}/results", { "GET", "POST", "DELETE" } },
  }
  local CONFORMS = json.array({ "https://api.openeo.org/" .. API_VERSION })

  local function capabilities(req, res)
    local eps = {}
    for _, e in ipairs(ENDPOINTS) do
      if e[1] ~= "/" then eps[#eps + 1] = { path = e[1], methods = json.array(e[2]) } end
    end
    local caps = {
      api_version = API_VERSION,
      backend_version = cfg.backend_version or "jobrt",
      stac_version = "1.0.0",
      type = "Catalog",
      id = cfg.id or "jobrt-openeo",
      title = cfg.title or "jobrt openEO back-end",
      description = cfg.description or
        "A jobrt job runtime serving openEO batch jobs and synchronous processing of process graphs "
        .. "made of the pure (non data cube) openEO processes.",
      production = true,
      conformsTo = CONFORMS,
      endpoints = json.array(eps),
      billing = { currency = currency or NULL },
      links = json.array({
        { rel = "self", href = url(req, "/"), type = "application/json" },
        { rel = "version-history", href = base_url(req) .. "/.well-known/openeo", type = "application/json" },
        { rel = "conformance", href = url(req, "/conformance"), type = "application/json" },
        { rel = "data", href = url(req, "/collections"), type = "application/json" },
      }),
    }
    res:json(caps)
  end
  r:get("/", capabilities, { public = true })

  r:get("/conformance", function(_, res)
    res:json({ conformsTo = CONFORMS })
  end, { public = true })

  r:get("/file_formats", function(_, res)
    res:json({
      input = json.object({}),
      output = {
        JSON = {
          title = "JSON",
          description = "The result value as a JSON document.",
          gis_data_types = json.array({ "other" }),
          parameters = json.object({}),
        },
      },
    })
  end, { public = true })

  r:get("/processes", function(req, res)
    res:json({ processes = processes.list(), links = json.array({
      { rel = "self", href = url(req, "/processes"), type = "application/json" },
    }) })
  end, { public = true })

  r:get("/collections", function(req, res)
    local list = {}
    for _, c in ipairs(type(cfg.collections) == "table" and cfg.collections or {}) do list[#list + 1] = c end
    res:json({ collections = json.array(list), links = json.array({
      { rel = "self", href = url(req, "/collections"), type = "application/json" },
    }) })
  end, { public = true })

  r:get("/credentials/basic", function(req, res)
    local p = req.principal
    if not p or p.method ~= "basic" then
      ctx.fail(401, "AuthenticationRequired", "HTTP Basic credentials are required here.",
        { ["WWW-Authenticate"] = 'Basic realm="jobrt"' })
    end
    local token, err = ctx.auth:issue_token(p)
    if not token then ctx.fail(500, "Internal", tostring(err)) end
    res:json({ access_token = token })
  end)

  r:get("/me", function(req, res)
    local p = req.principal
    res:json({
      user_id = p.name, name = p.name,
      links = json.array({ { rel = "related", href = url(req, "/jobs"), title = "Batch jobs" } }),
    })
  end)

  ---------------------------------------------------------------------------
  -- Synchronous processing

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

  ---------------------------------------------------------------------------
  -- Logs

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
    local base = "/jobs/" .. job.id .. "/results/"
    local item = publisher.publish(job, TASK, files, {
      url = function(name) return signed(req, base .. "assets/" .. name) end,
      process_url = signed(req, base .. "process"),
      item_url = signed(req, base .. "item"),
      expires = rfc3339(os.time() + url_ttl),
      now = rfc3339(os.time()),
      status = status,
      options = publisher_opts,
      title = doc.title, description = doc.description,
      null = NULL,
    })
    if type(item) ~= "table" then ctx.fail(500, "Internal", "The publisher returned no STAC item.") end
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
