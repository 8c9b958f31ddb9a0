-- What the openEO surface's route files share: its constants, the request
-- helpers (body, process, budget and log level checks), the state mapping,
-- and mount(ctx), the per-mount pieces (URLs, signed links, a caller's job,
-- the job document, the task that evaluates a process, the estimate).
local core = require("jobrt.core")
local json = require("jobrt.json")
local graph = require("api.openeo.graph")
local processes = require("api.openeo.processes")

local M = {}

local API_VERSION = "1.2.0"
local NULL = json.null
local TASK = "graph"
local EVAL_BIN = "/.jobrt/jobrt"
local GRAPH_FILE = "/inputs/process.json"
local RESULT_FILE = "result.json"
M.API_VERSION, M.NULL, M.TASK = API_VERSION, NULL, TASK

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

M.is_object, M.status_of = is_object, status_of
M.base_url, M.owner_of, M.iso_duration, M.rfc3339 = base_url, owner_of, iso_duration, rfc3339
M.checked_process, M.body_object, M.optional_string = checked_process, body_object, optional_string
M.budget_of, M.log_level_of, M.LEVELS, M.CORE_LEVEL = budget_of, log_level_of, LEVELS, CORE_LEVEL

---------------------------------------------------------------------------
-- One mount

--- mount(ctx) -> the pieces the route files share for this mount (raises
-- when a plugin the deployment names does not load).
function M.mount(ctx)
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
  -- Uploads (a publisher with upload, e.g. publish.s3) happen once per job.
  local publication = require("jobrt.publication").new({
    name = cfg.publisher or "publish.local", mod = publisher, options = publisher_opts, core = core, log = ctx.log,
  })
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

  return {
    ctx = ctx, cfg = cfg, signer = signer, currency = currency, sync_timeout = sync_timeout,
    publisher = publisher, publisher_opts = publisher_opts, url_ttl = url_ttl, publication = publication,
    url = url, signed = signed, visible = visible, describe = describe, task_of = task_of,
    estimate_context = estimate_context, estimate = estimate,
  }
end

return M
