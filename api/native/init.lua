-- The native surface (DESIGN §11), mounted at /jobrt/v1: the core job model
-- over HTTP, JSON in and out. It only translates: units in task resources and
-- timeouts, query strings, core error codes to HTTP statuses.
local core = require("jobrt.core")
local json = require("jobrt.json")
local units = require("jobrt.units")

local M = { name = "native" }

-- The options of `surfaces.native` (jobrt.config checks them and fills in
-- the defaults before the surface is mounted).
M.schema = {
  approval = { type = "list", of = { type = "plugin" }, default = {},
    description = "approval policies run on every submitted job, in order" },
}

local STATUS = {
  NOT_FOUND = 404, INVALID = 400, CONFLICT = 409, LOCKED = 409, EXISTS = 409,
  STORE = 503, SYSTEM = 500,
}

function M.error_body(_, code, message)
  return { code = code, message = message }
end

-- Raise the HTTP failure for a core result (nil, msg, code), else return v.
local function check(ctx, v, msg, code)
  if v == nil then ctx.fail(STATUS[code] or 500, code or "SYSTEM", msg or "failed") end
  return v
end

local function invalid(ctx, fmt, ...)
  ctx.fail(400, "INVALID", string.format(fmt, ...))
end

local function is_null(v) return v == nil or v == json.null end

-- Task resources and timeouts take units ("500m", "64MiB", "30s").
local function normalise_task(ctx, t, i)
  if type(t) ~= "table" then invalid(ctx, "tasks[%d] must be an object", i) end
  local r = t.resources
  if not is_null(r) then
    if type(r) ~= "table" then invalid(ctx, "tasks[%d].resources must be an object", i) end
    local out = {}
    for key, parse in pairs({ cpu = units.cpu, memory = units.bytes, disk = units.bytes }) do
      if not is_null(r[key]) then
        local v, err = parse(r[key])
        if not v then invalid(ctx, "tasks[%d].resources.%s: %s", i, key, err) end
        out[key] = v
      end
    end
    if not is_null(r.gpu) then
      if math.type(r.gpu) ~= "integer" or r.gpu < 0 then
        invalid(ctx, "tasks[%d].resources.gpu must be a count", i)
      end
      out.gpu = r.gpu
    end
    t.resources = out
  else
    t.resources = nil
  end
  if not is_null(t.timeout) then
    local v, err = units.duration(t.timeout)
    if not v then invalid(ctx, "tasks[%d].timeout: %s", i, err) end
    t.timeout = v
  else
    t.timeout = nil
  end
  if type(t.tolerable) ~= "nil" and type(t.tolerable) ~= "boolean" then
    invalid(ctx, "tasks[%d].tolerable must be true or false", i)
  end
end

local function normalise_job(ctx, body)
  if type(body) ~= "table" or json.is_array(body) then
    invalid(ctx, "the job must be a JSON object")
  end
  if not is_null(body.tasks) then
    if type(body.tasks) ~= "table" then invalid(ctx, "tasks must be a list") end
    for i, t in ipairs(body.tasks) do normalise_task(ctx, t, i) end
  end
  return body
end

local function principal_name(req)
  local p = req.principal
  if type(p) == "table" then return p.name or p.id end
  if type(p) == "string" then return p end
  return nil
end

local function is_admin(ctx, req)
  return ctx.has_role(req, "admin")
end

-- The job, when the caller may see it; someone else's job answers exactly
-- as a missing one does, so ids cannot be probed.
local function visible_job(ctx, req, id)
  local job = check(ctx, core.get(id))
  if not ctx.owns(req, job) then
    ctx.fail(404, "NotFound", string.format("job %q not found", id))
  end
  return job
end

local function int_param(ctx, q, key)
  local v = q[key]
  if v == nil or v == "" then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then invalid(ctx, "%s must be a non-negative integer", key) end
  return n
end

-- The approval policies the deployment names (`native: {approval: [...]}`),
-- loaded once per mount so a broken one stops start-up or a reload.
local function load_policies(ctx)
  local out = {}
  local names = ctx.config.approval
  if names == nil or names == json.null then return out end
  if type(names) ~= "table" then error("surfaces.native.approval must be a list of plugin names", 0) end
  for _, name in ipairs(names) do
    local mod, options = ctx.plugin(name)
    if not mod then error(options, 0) end
    local fn = type(mod) == "function" and mod or (type(mod) == "table" and mod.approve)
    if type(fn) ~= "function" then
      error("plugin " .. name .. ": an approval policy returns function(job, ctx) or {approve = ...}", 0)
    end
    out[#out + 1] = { name = name, fn = fn, options = options }
  end
  return out
end

-- Run the policies in order: the first "reject" decides; any "wait" holds
-- the job for approval; otherwise it starts. Returns core.start's options.
local function decide(ctx, policies, job, req)
  local hold
  for _, p in ipairs(policies) do
    local ok, decision, reason = pcall(p.fn, job, { options = p.options, principal = req.principal, log = ctx.log })
    if not ok then
      ctx.log("error", "approval policy " .. p.name .. " failed: " .. tostring(decision))
      ctx.fail(500, "PolicyFailed", "approval policy " .. p.name .. " failed (request " .. req.id .. ")")
    end
    if decision == "reject" then
      return { reject = type(reason) == "string" and reason or ("rejected by policy " .. p.name) }
    elseif decision == "wait" then
      hold = true
    elseif decision ~= "accept" then
      ctx.fail(500, "PolicyFailed", string.format(
        "approval policy %s answered %s; expected accept, reject or wait", p.name, tostring(decision)))
    end
  end
  return { start = true, hold = hold }
end

function M.routes(r, ctx)
  local policies = load_policies(ctx)

  r:post("/jobs", function(req, res)
    local body = normalise_job(ctx, req:json())
    local start = body.start == true
    body.start = nil
    body.surface = "native"
    -- An admin may submit on someone's behalf; everyone else owns what they submit.
    if not (is_admin(ctx, req) and type(body.owner) == "string" and body.owner ~= "") then
      body.owner = principal_name(req)
    end
    body.state, body.created_at, body.updated_at = nil, nil, nil
    local job = check(ctx, core.submit(body, start and decide(ctx, policies, body, req) or {}))
    res:header("Location", ctx.mount .. "/jobs/" .. job.id)
    res:json(job, 201)
  end)

  r:get("/jobs", function(req, res)
    local q = req.query
    if q.state and q.state ~= "" and not q.state:match("^[%a_]+$") then
      invalid(ctx, "unknown state %q", q.state)
    end
    local owner = q.owner ~= "" and q.owner or nil
    if not is_admin(ctx, req) then owner = principal_name(req) end
    local page = check(ctx, core.list({
      state = q.state ~= "" and q.state or nil,
      owner = owner,
      surface = q.surface ~= "" and q.surface or nil,
      limit = int_param(ctx, q, "limit"),
      after = int_param(ctx, q, "after"),
    }))
    res:json({ jobs = page.jobs, next = page.next })
  end)

  r:get("/jobs/{job_id}", function(req, res)
    res:json(visible_job(ctx, req, req.params.job_id))
  end)

  r:patch("/jobs/{job_id}", function(req, res)
    local body = normalise_job(ctx, req:json())
    for _, k in ipairs({ "id", "owner", "surface", "state", "created_at", "updated_at",
                         "started_at", "ended_at", "error", "start" }) do
      body[k] = nil
    end
    visible_job(ctx, req, req.params.job_id)
    res:json(check(ctx, core.update(req.params.job_id, body)))
  end)

  r:delete("/jobs/{job_id}", function(req, res)
    visible_job(ctx, req, req.params.job_id)
    check(ctx, core.delete(req.params.job_id))
    res:send("", 204)
  end)

  for _, op in ipairs({ "start", "stop", "cancel", "suspend", "restart" }) do
    r:post("/jobs/{job_id}/" .. op, function(req, res)
      local reason
      if req.body ~= "" and op ~= "start" and op ~= "restart" then
        local b = req:json()
        if type(b) == "table" and type(b.reason) == "string" then reason = b.reason end
      end
      local job = visible_job(ctx, req, req.params.job_id)
      if op == "start" then
        res:json(check(ctx, core.start(req.params.job_id, decide(ctx, policies, job, req))))
      else
        res:json(check(ctx, core[op](req.params.job_id, reason)))
      end
    end)
  end

  r:post("/jobs/{job_id}/approve", function(req, res)
    if not is_admin(ctx, req) then
      ctx.fail(403, "Forbidden", "approving jobs needs the admin role")
    end
    local b = req:json()
    if type(b) ~= "table" or type(b.accept) ~= "boolean" then
      invalid(ctx, 'the body must be {"accept": true|false, "reason": "..."}')
    end
    res:json(check(ctx, core.approve(req.params.job_id, {
      accept = b.accept,
      reason = type(b.reason) == "string" and b.reason or nil,
      by = principal_name(req) or "anonymous",
    })))
  end)

  r:get("/jobs/{job_id}/logs", function(req, res)
    local q = req.query
    local level = q.level
    if level == "" then level = nil end
    visible_job(ctx, req, req.params.job_id)
    local logs = check(ctx, core.logs(req.params.job_id, {
      after = int_param(ctx, q, "after"), limit = int_param(ctx, q, "limit"), level = level,
    }))
    local last = logs[#logs]
    res:json({ logs = logs, next = last and tostring(last.id) or nil })
  end)

  r:get("/jobs/{job_id}/results", function(req, res)
    visible_job(ctx, req, req.params.job_id)
    res:json({ assets = check(ctx, core.results(req.params.job_id)) })
  end)

  -- Bearer tokens for the caller, so scripts need not send a password
  -- with every request: {"ttl": "1h"} (default 24 h).
  r:post("/tokens", function(req, res)
    local ttl = 24 * 3600
    if req.body ~= "" then
      local b = req:json()
      if type(b) ~= "table" then invalid(ctx, 'the body must be {"ttl": "1h"}') end
      if not is_null(b.ttl) then
        local v, err = units.duration(b.ttl)
        if not v or v <= 0 then invalid(ctx, "ttl: %s", err or "must be more than 0") end
        ttl = v
      end
    end
    local token, expires = ctx.auth:issue_token(req.principal, ttl)
    if not token then ctx.fail(503, "STORE", expires) end
    res:json({ token = token, expires_at = os.date("!%Y-%m-%dT%H:%M:%SZ", expires) }, 201)
  end)

  -- Revoke the bearer token this request carries.
  r:delete("/tokens/current", function(req, res)
    local token = (req.headers.authorization or ""):match("^[Bb]earer%s+(%S+)$")
    if not token then invalid(ctx, "send the token to revoke as 'Authorization: Bearer TOKEN'") end
    check(ctx, ctx.auth:revoke(token))
    res:send("", 204)
  end)

  -- One JSON event per line, from ?after= (default: from now); ?follow=0
  -- ends after the events stored so far. A blank line every 15 s keeps the
  -- connection alive and tells whether the client has gone.
  r:get("/events", function(req, res)
    -- Events name every job of every owner.
    if not is_admin(ctx, req) then
      ctx.fail(403, "Forbidden", "the event stream needs the admin role")
    end
    local q = req.query
    local after = int_param(ctx, q, "after")
    local follow = q.follow ~= "0" and q.follow ~= "false"
    local w <close> = core.watch(after)
    local out = res:stream(200, { ["Content-Type"] = "application/x-ndjson" })
    while true do
      local ev, why = w:next(follow and 15000 or 0)
      if why == "stopping" then
        break
      elseif ev then
        if not out:write(json.encode(ev) .. "\n") then break end
      elseif not follow then
        break
      elseif not out:write("\n") then
        break
      end
    end
    out:close()
  end)
end

return M
