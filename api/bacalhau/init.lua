-- Bacalhau's legacy requester API (v1.0.x, with v1.1's spellings), at
-- /requester/* and /api/v1/requester/*, plus the node endpoints its CLI and
-- SDK call (version, node_info, healthz, livez, readyz, id). Clients are
-- named by their RSA key: submit, cancel, approve and logs carry a signed
-- envelope (api/bacalhau/envelope.lua), the read endpoints a client_id.
-- The surface only translates (api/bacalhau/payload.lua and spec.lua for
-- documents, view.lua for answers); jobs go down the submission pipeline
-- (ctx.submit) like every surface's.
local M = { name = "bacalhau" }

-- The options of `surfaces.bacalhau` (checked by jobrt.config, defaults
-- filled in: seconds, millicores, bytes).
M.schema = {
  approvers = { type = "list", default = {},
    of = { type = "string", pattern = "^" .. string.rep("%x", 64) .. "$",
           pattern_text = "must be a ClientID: 64 hex digits (SHA-256 of the key's modulus)" },
    description = "ClientIDs whose signed approve releases or rejects a held job" },
  approval = { type = "list", of = { type = "plugin" }, default = {},
    description = "approval policies run on every submitted job, in order" },
  publishers = { type = "map", of = { type = "plugin" }, default = { ["local"] = "publish.local" },
    description = "Bacalhau publisher names (local, ipfs, s3, ...) -> publisher plugins" },
  task_cpu = { type = "cpu", default = 500, min = 1, description = "Resources.CPU when a job gives none" },
  task_memory = { type = "bytes", default = 1024 * 1024 * 1024, min = 1,
    description = "Resources.Memory when a job gives none" },
  task_timeout = { type = "duration", default = 1800, min = 1, description = "Spec.Timeout when a job gives none" },
  wasm = { type = "record", fields = {
    image = { type = "string", default = "host" },
    command = { type = "list", of = { type = "string" }, required = true },
  }, description = "how a Wasm job runs: an image and the runtime's command (e.g. [wasmtime, run])" },
  node_id = { type = "string", default = "jobrt", description = "this node's ID in answers" },
  node_labels = { type = "map", of = { type = "string" }, default = {},
    description = "labels NodeSelectors are matched against" },
}

-- Requests are signed (submit, cancel, approve, logs) or name the client
-- (list, states, results, events): no HTTP credentials.
M.auth = false
M.accepts = "json"

-- The runtime's codes in bacerrors' spelling.
local CODES = {
  BadRequest = "error-bad-request", NotFound = "error-job-not-found", Unauthorized = "error-unauthorized",
  Forbidden = "error-forbidden", Conflict = "error-conflict", Locked = "error-conflict",
  MethodNotAllowed = "error-method-not-allowed", UnsupportedMediaType = "error-unsupported-media-type",
  PayloadTooLarge = "error-payload-too-large", Unavailable = "error-unavailable",
  Internal = "error-internal", PolicyFailed = "error-internal",
}

--- The error body of Bacalhau's requester API: {Code, Message, Details}.
function M.error_body(status, code, message, req)
  local details = { status = status }
  if req and req.id then details.request_id = req.id end
  return {
    Code = CODES[code] or (code:find("^error%-") and code) or (status >= 500 and "error-internal" or "error-bad-request"),
    Message = message,
    Details = details,
  }
end

function M.routes(r, ctx)
  local s = require("api.bacalhau.requester").mount(ctx)
  require("api.bacalhau.requester").routes(r, s)
  require("api.bacalhau.node").routes(r, s)
end

return M
