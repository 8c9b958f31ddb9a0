-- The Prometheus metrics at /jobrt/metrics (text exposition format 0.0.4):
-- what the runtime counts in C (jobrt.core.metrics), for an administrator
-- or a scraper sending the deployment's token (`metrics: {token: ...}`) as
-- its bearer token. `metrics: {enabled: false}` turns counting and the
-- route off.
local core = require("jobrt.core")

local M = {}

M.PATH = "/jobrt/metrics"

local CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

function M.routes(r, ctx)
  r:root("GET", M.PATH, function(req, res)
    if not ctx.metrics.enabled then
      ctx.fail(404, "NotFound", "metrics are turned off in this deployment (metrics.enabled: false)")
    end
    if not ctx.metrics.scraper(req) and not ctx.has_role(req, "admin") then
      if req.principal then
        ctx.fail(403, "Forbidden", "the metrics need the admin role or the scrape token (metrics.token)")
      end
      ctx.fail(401, "Unauthorized", "the metrics need an administrator's credentials or the scrape"
        .. " token (metrics.token) as a bearer token", { ["WWW-Authenticate"] = 'Bearer realm="jobrt"' })
    end
    res:header("Content-Type", CONTENT_TYPE)
    res:header("Cache-Control", "no-store")
    res:send(ctx.check(core.metrics({ version = ctx.host.version })))
  end, { public = true })
end

return M
