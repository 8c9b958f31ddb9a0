-- Files the native surface serves as they are, from the binary: the
-- dashboard at /jobrt/ui/ (ui/*: HTML, CSS and JavaScript, no build step)
-- and the OpenAPI document at <mount>/openapi.json. Public (the page signs
-- in with the API afterwards), revalidated by ETag, under a strict CSP.
local crypto = require("jobrt.crypto")

local M = {}

M.UI = "/jobrt/ui"

local TYPES = {
  html = "text/html; charset=utf-8", css = "text/css; charset=utf-8",
  js = "text/javascript; charset=utf-8", svg = "image/svg+xml", json = "application/json",
}

-- Everything the page loads comes from here; nothing inline, no other origin.
local CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
  .. "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

-- serve(ctx, etags, req, res, path): the asset at path, 304 when the
-- client's copy is current, 404 when there is none. etags caches the tags.
local function serve(ctx, etags, req, res, path)
  local body = ctx.asset(path)
  if not body then ctx.fail(404, "NotFound", "no such file: " .. req.path) end
  local etag = etags[path]
  if not etag then
    etag = '"' .. crypto.hex(crypto.sha256(body)):sub(1, 32) .. '"'
    etags[path] = etag
  end
  res:header("ETag", etag)
  -- Always revalidated, so a new binary's files are used at once.
  res:header("Cache-Control", "no-cache")
  res:header("X-Content-Type-Options", "nosniff")
  local inm = req.headers["if-none-match"]
  if inm then
    for tag in inm:gmatch("[^,%s]+") do
      if tag == etag or tag == "W/" .. etag or tag == "*" then return res:send("", 304) end
    end
  end
  res:header("Content-Type", TYPES[path:match("%.(%w+)$")] or "application/octet-stream")
  if path:match("%.html$") then
    res:header("Content-Security-Policy", CSP)
    res:header("Referrer-Policy", "no-referrer")
    res:header("X-Frame-Options", "DENY")
  end
  res:send(body, 200)
end

function M.routes(r, ctx)
  local etags = {}
  r:get("/openapi.json", function(req, res) serve(ctx, etags, req, res, "api/native/openapi.json") end,
    { public = true })
  -- "/jobrt/ui" and "/jobrt/ui/" (the router tries a path without its
  -- trailing slash) are the page; relative links need the slash.
  r:root("GET", M.UI, function(req, res)
    if req.path:sub(-1) ~= "/" then
      res:header("Location", M.UI .. "/")
      return res:send("", 308)
    end
    serve(ctx, etags, req, res, "ui/index.html")
  end, { public = true })
  r:root("GET", M.UI .. "/{file}", function(req, res)
    local file = req.params.file
    if not file:match("^[%w_-]+%.%w+$") then ctx.fail(404, "NotFound", "no such file: " .. req.path) end
    serve(ctx, etags, req, res, "ui/" .. file)
  end, { public = true })
end

return M
