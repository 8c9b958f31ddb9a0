-- The native API's image routes (admins only): list, import an archive
-- the daemon's host can read, pull, remove, gc. The store is the one
-- `jobrt images` works on (ctx.images); long operations run off the loop.
local json = require("jobrt.json")

local M = {}

-- The store's codes as HTTP answers.
local HTTP = {
  NOT_FOUND = { 404, "NotFound" }, INVALID = { 400, "BadRequest" }, CONFLICT = { 409, "Conflict" },
  FULL = { 507, "InsufficientStorage" },
}

local function fail(ctx, msg, code)
  local h = HTTP[code] or { 500, "Internal" }
  ctx.fail(h[1], h[2], tostring(msg))
end

local function admin_only(ctx, req)
  if not ctx.has_role(req, "admin") then ctx.fail(403, "Forbidden", "the image store needs the admin role") end
end

local function store_of(ctx)
  local store, err = ctx.images.store()
  if not store then ctx.fail(500, "Internal", "the image store: " .. tostring(err)) end
  return store
end

-- {"path": ..., "name": ...}-like bodies: only these string members.
local function strings_body(ctx, req, fields, shape)
  local b = req:json()
  if type(b) ~= "table" or json.is_array(b) then ctx.fail(400, "BadRequest", "the body must be a JSON object: " .. shape) end
  for k, v in pairs(b) do
    if not fields[k] then ctx.fail(400, "BadRequest", string.format("%s: unknown field (the body is %s)", k, shape)) end
    if v ~= json.null and type(v) ~= "string" then ctx.fail(400, "BadRequest", k .. ": must be a string") end
    if v == json.null then b[k] = nil end
  end
  for k, required in pairs(fields) do
    if required == "required" and not b[k] then ctx.fail(400, "BadRequest", string.format("%s: missing (the body is %s)", k, shape)) end
  end
  return b
end

function M.routes(r, ctx)
  r:get("/images", function(req, res)
    admin_only(ctx, req)
    local store = store_of(ctx)
    local list, err, code = store:list()
    if not list then fail(ctx, err, code) end
    local root = store:strategy()
    res:json({ images = json.array(list), usage = store:usage(), root = root })
  end)

  r:post("/images/import", function(req, res)
    admin_only(ctx, req)
    local shape = '{"path": "/abs/archive.tar", "name": "NAME:TAG"}'
    local b = strings_body(ctx, req, { path = "required", name = "optional" }, shape)
    if b.path:sub(1, 1) ~= "/" then ctx.fail(400, "BadRequest", "path: must be an absolute path on the daemon's host") end
    local info, err, code = ctx.images.import(b.path, b.name)
    if not info then fail(ctx, err, code) end
    res:json(info, 201)
  end)

  r:post("/images/pull", function(req, res)
    admin_only(ctx, req)
    local b = strings_body(ctx, req, { ref = "required", name = "optional" }, '{"ref": "registry:5000/app:1", "name": "app:1"}')
    local info, err, code = ctx.images.pull(b.ref, { name = b.name })
    if not info then fail(ctx, err, code or "INVALID") end
    res:json(info, 201)
  end)

  r:delete("/images", function(req, res)
    admin_only(ctx, req)
    local name = req.query.name
    if not name or name == "" then ctx.fail(400, "BadRequest", "name: give the image to remove as ?name=NAME:TAG") end
    local ok, err, code = ctx.images.remove(name)
    if not ok then fail(ctx, err, code) end
    res:send("", 204)
  end)

  r:post("/images/gc", function(req, res)
    admin_only(ctx, req)
    local st, err, code = ctx.images.gc()
    if not st then fail(ctx, err, code) end
    res:json(st)
  end)
end

return M
