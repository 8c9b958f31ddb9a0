-- Kuscia's job API (KusciaAPI JobService over HTTP), at /api/v1/job/*:
-- create, query, status/batchQuery, stop, restart, suspend, cancel,
-- delete, approve and the watch stream. A KusciaJob is a DAG of tasks, each
-- run by its parties; every party of a hosted domain is one sandboxed core
-- task, the app image saying how it runs. The surface only translates
-- (api/kuscia/decode.lua and job.lua in, view.lua and encode.lua out);
-- jobs go down the submission pipeline (ctx.submit) like every surface's.
local M = { name = "kuscia" }

local LABEL = "^%f[a-z0-9][a-z0-9%-]*[a-z0-9]$"

-- The options of `surfaces.kuscia` (checked by jobrt.config).
M.schema = {
  tokens = { type = "list", default = {}, of = { type = "string" },
    description = "values of the Token header that may call the API (besides administrators' API tokens)" },
  domains = { type = "list", default = {},
    of = { type = "string", pattern = LABEL,
           pattern_text = "must be a domain id: lower-case letters, digits and '-', starting and ending"
             .. " with a letter or digit" },
    description = "the domains hosted here: a party of another domain is refused" },
  approval = { type = "list", of = { type = "plugin" }, default = {},
    description = "approval policies run on every created job, in order" },
  app_images = { type = "map", default = {},
    of = { type = "record", fields = {
      image = { type = "string", default = "host", description = "a name of sandbox.images, or of the image store (NAME:TAG)" },
      command = { type = "list", of = { type = "string" }, required = true,
        description = "the argv of each party's process; {{.TASK_ID}} and the like are filled in" },
      resources = { type = "record", fields = {
        cpu = { type = "cpu" }, memory = { type = "bytes" },
      }, description = "what a party asks for when its request gives no resources" },
      env = { type = "map", of = { type = "string", empty = true }, default = {},
        description = "more environment variables of the party's process" },
    } },
    description = "app_image names -> how their parties run" },
  client_cert = { type = "boolean", default = false,
    description = "accept a verified TLS client certificate instead of a token" },
}

local sorted = require("jobrt.tables").sorted_keys

--- check(options, cfg) -> problems: what the schema cannot say: domain
-- ids of at most 63 characters, app images of sandbox.images (or image
-- store references NAME:TAG), argv
-- placeholders the surface fills in, environment variable names.
function M.check(options, cfg)
  local problems = {}
  for i, d in ipairs(options.domains or {}) do
    if #d > 63 then problems[#problems + 1] = { path = { "domains", i }, message = "longer than 63 characters" } end
  end
  local images = cfg.sandbox and cfg.sandbox.images or {}
  for _, name in ipairs(sorted(options.app_images or {})) do
    local app = options.app_images[name]
    -- NAME:TAG (or @sha256:...) names an image of the image store, which
    -- the executor resolves first at submit; a bare name must be a folder.
    local stored = type(app.image) == "string" and app.image ~= "host" and
      (app.image:find("^[%w][%w._/:-]*:[%w_][%w_.-]*$") or app.image:find("@sha256:%x+$"))
    if not images[app.image] and not stored then
      local known = sorted(images)
      problems[#problems + 1] = { path = { "app_images", name, "image" }, message = string.format(
        '"%s" is not an image of sandbox.images (%s)', app.image, table.concat(known, ", ")) }
    end
    for _, k in ipairs(sorted(app.env or {})) do
      if not k:find("^[%a_][%w_]*$") then
        problems[#problems + 1] = { path = { "app_images", name, "env", k },
          message = "not a variable name (letters, digits and '_', not starting with a digit)" }
      end
    end
    local bad = require("api.kuscia.job").unknown_placeholders(app.command)
    if bad then
      problems[#problems + 1] = { path = { "app_images", name, "command" }, message = string.format(
        "unknown placeholder {{.%s}} (known: TASK_ID, TASK_ALIAS, TASK_INPUT_CONFIG, KUSCIA_JOB_ID,"
          .. " KUSCIA_TASK_ID, KUSCIA_DOMAIN_ID, KUSCIA_ROLE)", bad[1]) }
    end
  end
  return problems
end

-- The surface checks the Token header itself: a bad one is a 401 with an
-- empty body, which the runtime's authenticator does not answer.
M.auth = false

-- Kuscia's answers: HTTP 200 with the error in status.code (the codes of
-- api/kuscia/service.lua), except a 401 (empty), a bad watch request (an
-- empty 400) and unknown routes (gin's text 404).
function M.error_body(status, code, message, req)
  local op = req and req.kuscia_op
  if status == 401 then return "", 401 end
  if not op then
    if status == 404 or status == 405 then return "404 page not found", 404 end
    return "", status
  end
  if op == "watch" then return "", status end
  local service = require("api.kuscia.service")
  local kcode
  if math.type(code) == "integer" then
    kcode = code
  elseif code == "InternalError" or code == "Timeout" or code == "OutOfMemory" then
    kcode = service.CODES.UNEXPECTED
  elseif status == 400 then
    kcode = service.CODES.INVALID
  else
    kcode = service.OP_CODES[op] or service.CODES.UNEXPECTED
  end
  local body = require("api.kuscia.encode").proto("JobIdResponse", {
    status = { code = kcode, message = tostring(message), details = {} },
  })
  return body, 200, "application/json; charset=utf-8"
end

function M.routes(r, ctx)
  local service = require("api.kuscia.service")
  service.routes(r, service.state(ctx))
end

return M
