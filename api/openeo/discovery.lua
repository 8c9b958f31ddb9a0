-- openEO discovery: /.well-known/openeo, the capabilities, conformance,
-- file formats, processes, collections, and the caller's credentials and
-- identity.
local json = require("jobrt.json")
local processes = require("api.openeo.processes")
local common = require("api.openeo.common")

local M = {}

local API_VERSION, NULL, base_url = common.API_VERSION, common.NULL, common.base_url

function M.routes(r, s)
  local ctx, cfg, url, currency = s.ctx, s.cfg, s.url, s.currency

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
end

return M
