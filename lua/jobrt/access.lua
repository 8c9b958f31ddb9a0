-- What the request pipeline (jobrt.server) tells operators about each
-- request: its access line (text, or JSON with the request's fields), the
-- metrics' label set its answer is counted under, secrets kept out of both,
-- and who may read the metrics (an admin, or the deployment's scrape token).
local http = require("jobrt.http")
local router_mod = require("jobrt.router")
local runtime = require("jobrt.runtime")

local M = {}

-- Query parameters whose values are secrets: a signed URL's signature
-- (jobrt.signed_url) and tokens some clients put in the query.
local SECRET_PARAMS = { signature = true, token = true, access_token = true, api_key = true }

--- access.redact(target) -> target with the values of secret query
-- parameters replaced by "REDACTED", for logs.
function M.redact(target)
  local path, qs = tostring(target):match("^([^?]*)%?(.*)$")
  if not path then return tostring(target) end
  local parts = {}
  for pair in (qs .. "&"):gmatch("([^&]*)&") do
    local k = pair:match("^([^=]*)")
    local name = router_mod.unescape(k:gsub("%+", " ")) or k
    if SECRET_PARAMS[name:lower()] then pair = k .. "=REDACTED" end
    parts[#parts + 1] = pair
  end
  return path .. "?" .. table.concat(parts, "&")
end

--- access.log(req, res, started): one line per request; headers
-- (Authorization among them) never appear. As JSON (log.format) the
-- request's fields (req.log, its runtime.log_context) and the answer's
-- figures are members; as text the request's id leads the line.
function M.log(req, res, started)
  if not runtime.logs("info") then return end
  runtime.log_access(req.log, req.method, M.redact(req.target), math.tointeger(res.code),
    (runtime.hrtime() - started) / 1e6, req.peer)
end

--- access.label(exchange, m): count the exchange's answer under the label
-- set m (http.metric_route; nil: unrouted). Exchanges made by tests may
-- not count.
function M.label(exchange, m)
  local f = exchange.label
  if f then f(exchange, m) end
end

--- access.route(surface, method, template) -> the label set of a route's
-- answers, or nil when metrics are not kept.
function M.route(surface, method, template)
  return http.metric_route(surface, method, template)
end

--- access.unrouted() -> label(exchange, surface, method): counts an answer
-- no route took under its surface and method, route "" (the label sets
-- kept per surface and method).
function M.unrouted()
  local sets = {}
  return function(exchange, surface, method)
    local key = surface .. " " .. method
    local m = sets[key]
    if m == nil then
      m = http.metric_route(surface, method, "") or false
      sets[key] = m
    end
    M.label(exchange, m or nil)
  end
end

--- access.metrics(cfg_metrics) -> {enabled, scraper(req)}: whether metrics
-- are counted (metrics.enabled), and whether req carries the deployment's
-- scrape token (metrics.token) as its bearer token.
function M.metrics(m)
  m = m or {}
  local token = m.token
  return {
    enabled = m.enabled ~= false,
    scraper = function(req)
      local given = type(req.headers) == "table" and tostring(req.headers.authorization or "")
        :match("^[Bb]earer%s+(%S+)%s*$")
      return token ~= nil and given ~= nil and require("jobrt.crypto").equal(given, token)
    end,
  }
end

return M
