-- The ten POST routes of Kuscia's JobService under the mount, each checking
-- the Token header first (401 with an empty body when it is wrong), reading
-- its request as the gateway does (api/kuscia/decode.lua) and answering
-- HTTP 200 with status.code: 0 or the error code of the operation. Jobs go
-- down the submission pipeline (ctx.submit) like every surface's.
local core = require("jobrt.core")
local async = require("jobrt.async")
local decode = require("api.kuscia.decode")
local encode = require("api.kuscia.encode")
local jobmap = require("api.kuscia.job")
local view = require("api.kuscia.view")
local watch = require("api.kuscia.watch")
local crypto = require("jobrt.crypto")

local M = {}

M.CODES = {
  INVALID = 11100, UNEXPECTED = 11101, CREATE = 11201, QUERY = 11202, BATCH_QUERY = 11203,
  DELETE = 11204, STOP = 11205, APPROVE = 11206, SUSPEND = 11207, RESTART = 11208, CANCEL = 11209,
  SUSPEND_NOT_RUNNING = 11210, RESTART_NOT_SUSPENDED_OR_FAILED = 11211,
}
local C = M.CODES

-- The code of each operation's own failures (a job not found, the core
-- refusing), which Kuscia answers with.
M.OP_CODES = {
  create = C.CREATE, query = C.QUERY, batchQuery = C.BATCH_QUERY, delete = C.DELETE, stop = C.STOP,
  approve = C.APPROVE, suspend = C.SUSPEND, restart = C.RESTART, cancel = C.CANCEL,
}

local JSON = "application/json; charset=utf-8"
local SUCCESS = { code = 0, message = "success", details = {} }
local OWNER_PREFIX = "kuscia:"
local MAX_WATCH_TIMEOUT = 2147483647
-- A stopped job's tasks may still be ending when it is restarted.
local STOPPING_TRIES, STOPPING_WAIT = 100, 0.05

-- A random task id as Kuscia makes one: the job's name and 12 hex digits.
local function task_id(job_id)
  return job_id:sub(1, 50) .. "-" .. crypto.hex(crypto.random_bytes(6))
end

--- service.state(ctx) -> what the routes share: the options (checked by
-- the surface's schema and check), hosted domains, app images and the
-- watch feed.
function M.state(ctx)
  local cfg = ctx.config or {}
  local domains = {}
  for _, d in ipairs(cfg.domains or {}) do domains[d] = true end
  return {
    ctx = ctx, cfg = cfg, core = core, surface = ctx.name, tokens = cfg.tokens or {},
    client_cert = cfg.client_cert == true,
    feed = watch.feed(core.get, ctx.name),
    opts = { domains = domains, app_images = cfg.app_images or {}, task_id = task_id },
  }
end

-- The caller's principal, or nil: the Token header is one of the
-- deployment's tokens or an API token of an administrator; or, where the
-- deployment allows it, a verified client certificate.
local function principal_of(s, req)
  local auth = s.ctx.auth
  if not auth then return nil end
  local token = req.headers.token
  if type(token) == "string" and token ~= "" then
    if #s.tokens > 0 then
      local p = auth:static_token(token, s.tokens, { name = "kuscia", roles = { "user" } })
      if p then return p end
    end
    local p = auth:token_principal(token)
    if p then
      req.principal = p
      if s.ctx.has_role(req, "admin") then return p end
      req.principal = nil
    end
  end
  if s.client_cert and type(req.tls) == "table" and req.tls.verified == true then
    return auth:client_cert(req.tls)
  end
  return nil
end

local function answer(res, message, value)
  res:header("Content-Type", JSON)
  res:send(encode.proto(message, value), 200)
end

function M.routes(r, s)
  local ctx = s.ctx

  local function fail(code, fmt, ...)
    ctx.fail(400, code, select("#", ...) > 0 and string.format(fmt, ...) or fmt)
  end

  local function request(name, req)
    local media = tostring(req.headers["content-type"] or ""):match("^%s*([^;%s]+)")
    if media and media:lower() == "application/x-protobuf" then
      fail(C.UNEXPECTED, "protobuf request bodies are not supported here: send the JSON mapping (Content-Type: application/json)")
    end
    local q, err = decode.request(name, req.body)
    if not q then fail(err.code, err.message) end
    return q
  end

  -- A Kuscia job by id, or the operation's failure.
  local function kuscia_job(id, code)
    if id == "" then fail(C.INVALID, "job id can not be empty") end
    local job = core.get(id)
    if not job or job.surface ~= s.surface then fail(code, 'kusciajob "%s" not found', id) end
    return job
  end

  local function route(name, op, handler)
    r:post("/" .. name, function(req, res)
      req.kuscia_op = op
      local p = principal_of(s, req)
      if not p then ctx.fail(401, "Unauthorized", "a valid Token header is required") end
      req.principal = p
      handler(req, res)
    end)
  end

  local function done(res, id)
    answer(res, "JobIdResponse", { status = SUCCESS, data = { job_id = id } })
  end

  route("create", "create", function(req, res)
    local q = request("CreateJobRequest", req)
    local job, code, message = jobmap.to_job(q, s.opts)
    if not job then fail(code, message) end
    if core.get(job.id) then fail(C.CREATE, 'kusciajob "%s" already exists', job.id) end
    local stored = ctx.submit(job, { req = req, owner = OWNER_PREFIX .. q.initiator, start = true })
    done(res, stored.id)
  end)

  route("query", "query", function(req, res)
    local q = request("QueryJobRequest", req)
    local job = kuscia_job(q.job_id, C.QUERY)
    answer(res, "QueryJobResponse", { status = SUCCESS, data = view.query(job) })
  end)

  route("status/batchQuery", "batchQuery", function(req, res)
    local q = request("BatchQueryJobStatusRequest", req)
    if #q.job_ids == 0 then fail(C.INVALID, "job ids can not be empty") end
    local jobs = {}
    for i, id in ipairs(q.job_ids) do
      if id == "" then fail(C.INVALID, "job id can not be empty") end
      jobs[i] = view.job_status(kuscia_job(id, C.BATCH_QUERY))
    end
    answer(res, "BatchQueryJobStatusResponse", { status = SUCCESS, data = { jobs = jobs } })
  end)

  -- Stop: the job ends Failed, and may be restarted.
  route("stop", "stop", function(req, res)
    local q = request("JobControlRequest", req)
    local job = kuscia_job(q.job_id, C.STOP)
    local state = view.job_state(job)
    if state ~= "Failed" then
      if state == "Succeeded" or state == "Cancelled" or state == "ApprovalReject" then
        fail(C.STOP, "job: %s current status is %s can not be stopped.", job.id, state)
      end
      local ok, err = core.fail(job.id, q.reason ~= "" and q.reason or "KusciaJobStopped: stopped by the KusciaAPI")
      if not ok then fail(C.STOP, "%s", tostring(err)) end
    end
    done(res, job.id)
  end)

  -- Cancel: final (a failed job too; restart then refuses it).
  route("cancel", "cancel", function(req, res)
    local q = request("JobControlRequest", req)
    local job = kuscia_job(q.job_id, C.CANCEL)
    local state = view.job_state(job)
    if state ~= "Succeeded" and state ~= "Cancelled" and state ~= "ApprovalReject" then
      local ok, err = core.cancel(job.id, q.reason ~= "" and q.reason or nil)
      if not ok then fail(C.CANCEL, "%s", tostring(err)) end
    end
    done(res, job.id)
  end)

  route("suspend", "suspend", function(req, res)
    local q = request("JobControlRequest", req)
    local job = kuscia_job(q.job_id, C.SUSPEND)
    local state = view.job_state(job)
    if state ~= "Running" then
      fail(C.SUSPEND_NOT_RUNNING, "job: %s current status is %s can not be suspend.", job.id, state)
    end
    local ok, err = core.suspend(job.id, q.reason ~= "" and q.reason or nil)
    if not ok then fail(C.SUSPEND, "%s", tostring(err)) end
    done(res, job.id)
  end)

  -- Restart: from Failed or Suspended; the tasks that succeeded are kept.
  route("restart", "restart", function(req, res)
    local q = request("JobControlRequest", req)
    local job = kuscia_job(q.job_id, C.RESTART)
    local state = view.job_state(job)
    if state ~= "Failed" and state ~= "Suspended" then
      fail(C.RESTART_NOT_SUSPENDED_OR_FAILED, "job: %s current status is %s can not be restart.", job.id, state)
    end
    local ok, err, code
    for _ = 1, STOPPING_TRIES do
      ok, err, code = core.restart(job.id)
      if ok or code ~= "CONFLICT" or not tostring(err):find("still stopping", 1, true) then break end
      async.sleep(STOPPING_WAIT)
    end
    if not ok then fail(C.RESTART, "%s", tostring(err)) end
    done(res, job.id)
  end)

  -- Delete: a running job is stopped and removed.
  route("delete", "delete", function(req, res)
    local q = request("DeleteJobRequest", req)
    local job = kuscia_job(q.job_id, C.DELETE)
    s.feed:deleting(job)
    local ok, err = core.delete(job.id, { force = true })
    if not ok then fail(C.DELETE, "%s", tostring(err)) end
    done(res, job.id)
  end)

  route("approve", "approve", function(req, res)
    local q = request("ApproveJobRequest", req)
    if q.job_id == "" then fail(C.INVALID, "job id can not be empty") end
    if q.result ~= 1 and q.result ~= 2 then fail(C.INVALID, "request result must be legal") end
    local job = kuscia_job(q.job_id, C.APPROVE)
    if job.state ~= "awaiting_approval" then
      fail(C.APPROVE, "job: %s current status is %s: it is not awaiting approval", job.id, view.job_state(job))
    end
    local by = req.principal and req.principal.name or "kuscia"
    if q.result == 1 then
      ctx.approve(job.id, { accept = true, reason = q.reason ~= "" and q.reason or nil, by = by })
    else
      ctx.approve(job.id, { accept = false, reason = q.reason ~= "" and q.reason or "rejected by " .. by, by = by })
    end
    done(res, job.id)
  end)

  route("watch", "watch", function(req, res)
    local q, err = decode.watch(req.body)
    if not q then ctx.fail(400, "BadRequest", err) end
    if q.timeout_seconds < 0 or q.timeout_seconds > MAX_WATCH_TIMEOUT then
      ctx.fail(400, "BadRequest", "timeout seconds must be in [0,2^31-1]")
    end
    watch.serve(s, res, q.timeout_seconds)
  end)
end

return M
