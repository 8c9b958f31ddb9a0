-- The openEO surface (API 1.2.0), mounted at /openeo/1.2 with
-- /.well-known/openeo at the host's root. It translates openEO documents to
-- the core job model and back: a batch job is a core job with one sandboxed
-- task that runs `jobrt eval` on the process (the daemon's own binary bound
-- read-only into the sandbox); POST /result evaluates in the request,
-- bounded. Batch jobs go down through the submission pipeline (ctx.submit,
-- ctx.pipeline: validation, `approval:` policies, the estimator); results go
-- through the publisher plugin the deployment names (`publisher:`).
local json = require("jobrt.json")
local eval = require("api.openeo.eval")
local common = require("api.openeo.common")

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

---------------------------------------------------------------------------
-- The surface: its routes by concern (api/openeo/discovery.lua, jobs.lua,
-- results.lua), sharing the pieces of api/openeo/common.lua.

function M.routes(r, ctx)
  local s = common.mount(ctx)
  require("api.openeo.discovery").routes(r, s)
  require("api.openeo.jobs").routes(r, s)
  require("api.openeo.results").routes(r, s)
end

return M
