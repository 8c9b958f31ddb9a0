-- The native surface (DESIGN §11), mounted at /jobrt/v1: the core job model
-- over HTTP, JSON in and out. It only translates: the body to a core-model
-- job for the submission pipeline (ctx.submit), query strings, and every
-- failure to the one error vocabulary below (README "Errors").
local async = require("jobrt.async")
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
  -- The native API's error codes, by HTTP status. A code raised below, by
  -- the pipeline (jobrt.submit maps the core's codes) or by the runtime
  -- that is not among these is answered with the one of its status.
  [400] = "BadRequest", [401] = "Unauthorized", [403] = "Forbidden", [404] = "NotFound",
  [405] = "MethodNotAllowed", [408] = "RequestTimeout", [409] = "Conflict", [410] = "Gone",
  [413] = "PayloadTooLarge", [415] = "UnsupportedMediaType", [431] = "HeadersTooLarge",
  [500] = "Internal", [503] = "Unavailable", [507] = "InsufficientStorage",
}
local KNOWN = { Locked = true, PolicyFailed = true, Timeout = true }
for _, code in pairs(STATUS) do KNOWN[code] = true end

function M.error_body(status, code, message)
  if not KNOWN[code] then code = STATUS[status] or (status >= 500 and "Internal" or "BadRequest") end
  return { code = code, message = message }
end

-- Bodies are JSON: any other media type is refused with 415 (jobrt.server).
M.accepts = "json"

local function invalid(ctx, fmt, ...)
  ctx.fail(400, "BadRequest", string.format(fmt, ...))
end

local function is_null(v) return v == nil or v == json.null end

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
  local job = ctx.check(core.get(id))
  if not ctx.owns(req, job) then
    ctx.fail(404, "NotFound", string.format("job %q not found", id))
  end
  return job
end

-- The body as a JSON object; take(key) removes a member the native API
-- reads itself (start, owner) before the rest goes to the pipeline.
local function body_object(ctx, req)
  local body = req:json()
  if type(body) ~= "table" or json.is_array(body) then
    invalid(ctx, "the body must be a JSON object")
  end
  return body
end

-- Units in task resources and timeouts ("500m", "64MiB", "30s", cores as
-- numbers) become the core model's millicores, bytes and seconds. Shapes
-- are the pipeline's to check: what is not where it belongs stays as given.
local RESOURCE_UNITS = { cpu = units.cpu, memory = units.bytes, disk = units.bytes }

local function translate_units(ctx, body)
  if type(body.tasks) ~= "table" then return body end
  for i, t in ipairs(body.tasks) do
    local where = string.format("tasks[%d]", i - 1)
    if type(t) == "table" and type(t.resources) == "table" then
      for key, parse in pairs(RESOURCE_UNITS) do
        local v = t.resources[key]
        if type(v) == "string" or type(v) == "number" then
          local n, err = parse(v)
          if not n then invalid(ctx, "%s.resources.%s: %s", where, key, err) end
          t.resources[key] = n
        end
      end
    end
    if type(t) == "table" and (type(t.timeout) == "string" or type(t.timeout) == "number") then
      local n, err = units.duration(t.timeout)
      if not n then invalid(ctx, "%s.timeout: %s", where, err) end
      t.timeout = n
    end
  end
  return body
end

-- A small body ({"reason": ...}, {"ttl": ...}): a JSON object with only
-- the given string-valued (or null) members, else 400 naming the member.
local function small_body(ctx, req, fields, shape)
  local b = body_object(ctx, req)
  for k, v in pairs(b) do
    if not fields[k] then invalid(ctx, "%s: unknown field (the body is %s)", k, shape) end
    if fields[k] == "string" and not is_null(v) and type(v) ~= "string" then
      invalid(ctx, "%s: must be a string", k)
    end
    if is_null(v) then b[k] = nil end
  end
  return b
end

-- A job whose images are being pulled before it starts waits for that.
local function with_pull(ctx, job)
  local why = ctx.images.waiting(job.id)
  if why then job.waiting = { reason = "Pulling", message = why } end
  return job
end

local function take(body, key)
  local v = body[key]
  body[key] = nil
  return v
end

function M.routes(r, ctx)
  r:post("/jobs", function(req, res)
    -- The common document (not started, owned by the caller) goes from its
    -- text to the store in one pass; any other, and any with a problem,
    -- takes the decoded path below, which names the problem.
    local job = ctx.submit_body(req.body, { req = req, owner = principal_name(req) })
    if job then
      res:header("Location", ctx.mount .. "/jobs/" .. job.id)
      res:header("Content-Type", "application/json")
      res:send(job.json, 201)
      return
    end
    local body = body_object(ctx, req)
    local start = take(body, "start")
    if not is_null(start) and type(start) ~= "boolean" then invalid(ctx, "start: must be true or false") end
    -- An admin may submit on someone's behalf; everyone else owns what they submit.
    local owner = take(body, "owner")
    if not is_null(owner) and type(owner) ~= "string" then invalid(ctx, "owner: must be a string") end
    if not (is_admin(ctx, req) and type(owner) == "string" and owner ~= "") then
      owner = principal_name(req)
    end
    -- A job only created comes back as its JSON text, built from what was
    -- written: no table to build and encode again.
    local job = ctx.submit(translate_units(ctx, body),
      { req = req, owner = owner, start = start == true, answer = "json" })
    res:header("Location", ctx.mount .. "/jobs/" .. job.id)
    if job.json then
      res:header("Content-Type", "application/json")
      res:send(job.json, 201)
    else
      res:json(job, 201)
    end
  end)

  r:get("/jobs", function(req, res)
    local q = req.query
    if q.state and q.state ~= "" and not q.state:match("^[%a_]+$") then
      invalid(ctx, "unknown state %q", q.state)
    end
    local owner = q.owner ~= "" and q.owner or nil
    if not is_admin(ctx, req) then owner = principal_name(req) end
    local page = ctx.check(core.list({
      state = q.state ~= "" and q.state or nil,
      owner = owner,
      surface = q.surface ~= "" and q.surface or nil,
      limit = req:int("limit", { min = 1 }),
      after = req:int("after"),
    }))
    for _, job in ipairs(page.jobs) do with_pull(ctx, job) end
    res:json({ jobs = page.jobs, next = page.next })
  end)

  r:get("/jobs/{job_id}", function(req, res)
    res:json(with_pull(ctx, visible_job(ctx, req, req.params.job_id)))
  end)

  r:patch("/jobs/{job_id}", function(req, res)
    local body = body_object(ctx, req)
    visible_job(ctx, req, req.params.job_id)
    res:json(ctx.update(req.params.job_id, translate_units(ctx, body)))
  end)

  r:delete("/jobs/{job_id}", function(req, res)
    visible_job(ctx, req, req.params.job_id)
    ctx.check(core.delete(req.params.job_id))
    res:send("", 204)
  end)

  for _, op in ipairs({ "start", "stop", "cancel", "suspend", "restart" }) do
    r:post("/jobs/{job_id}/" .. op, function(req, res)
      local reason
      if req.body ~= "" then
        local takes_reason = op ~= "start" and op ~= "restart"
        reason = small_body(ctx, req, takes_reason and { reason = "string" } or {},
          takes_reason and '{"reason": "..."}' or "empty for " .. op).reason
      end
      visible_job(ctx, req, req.params.job_id)
      if op == "start" then
        res:json(ctx.start(req.params.job_id, { req = req }))
      elseif op == "restart" then
        -- As start does: a suspended job whose tasks are still stopping is
        -- waited for (about 5 s at most), not refused.
        local job, err, code
        for _ = 1, 100 do
          job, err, code = core.restart(req.params.job_id)
          if job or code ~= "CONFLICT" or not tostring(err):find("still stopping", 1, true) then break end
          async.sleep(0.05)
        end
        res:json(ctx.check(job, err, code))
      else
        res:json(ctx.check(core[op](req.params.job_id, reason)))
      end
    end)
  end

  r:post("/jobs/{job_id}/approve", function(req, res)
    -- Admins decide on every held job; a role the holding policy names
    -- (approve.manual's roles) on the jobs that policy holds.
    local held = core.get(req.params.job_id)
    if not (held and ctx.may_approve(req, held)) and not is_admin(ctx, req) then
      ctx.fail(403, "Forbidden", "approving this job needs the admin role or one its approval policy names")
    end
    local shape = '{"accept": true|false, "reason": "..."}'
    local b = small_body(ctx, req, { accept = "boolean", reason = "string" }, shape)
    if type(b.accept) ~= "boolean" then invalid(ctx, "accept: must be true or false (the body is %s)", shape) end
    res:json(ctx.approve(req.params.job_id, {
      accept = b.accept,
      reason = b.reason,
      by = principal_name(req) or "anonymous",
    }))
  end)

  r:get("/jobs/{job_id}/logs", function(req, res)
    local q = req.query
    local level = q.level
    if level == "" then level = nil end
    visible_job(ctx, req, req.params.job_id)
    local logs = ctx.check(core.logs(req.params.job_id, {
      after = req:int("after"), limit = req:int("limit", { min = 1 }), level = level,
    }))
    local last = logs[#logs]
    res:json({ logs = logs, next = last and tostring(last.id) or nil })
  end)

  r:get("/jobs/{job_id}/results", function(req, res)
    visible_job(ctx, req, req.params.job_id)
    res:json({ assets = ctx.check(core.results(req.params.job_id)) })
  end)

  -- Bearer tokens for the caller, so scripts need not send a password
  -- with every request: {"ttl": "1h"} (default 24 h).
  r:post("/tokens", function(req, res)
    local ttl = 24 * 3600
    if req.body ~= "" then
      local b = small_body(ctx, req, { ttl = "duration" }, '{"ttl": "1h"}')
      if b.ttl ~= nil then
        local v, err = units.duration(b.ttl)
        if not v or v <= 0 then invalid(ctx, "ttl: %s", err or "must be more than 0") end
        ttl = v
      end
    end
    local token, expires = ctx.auth:issue_token(req.principal, ttl)
    if not token then ctx.fail(503, "Unavailable", expires) end
    res:json({ token = token, expires_at = os.date("!%Y-%m-%dT%H:%M:%SZ", expires) }, 201)
  end)

  -- Revoke the bearer token this request carries.
  r:delete("/tokens/current", function(req, res)
    local token = (req.headers.authorization or ""):match("^[Bb]earer%s+(%S+)$")
    if not token then invalid(ctx, "send the token to revoke as 'Authorization: Bearer TOKEN'") end
    ctx.check(ctx.auth:revoke(token))
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
    local after = req:int("after")
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

  -- The image store, for admins.
  require("api.native.images").routes(r, ctx)
  -- The API document and the dashboard, served from the binary.
  require("api.native.assets").routes(r, ctx)
  -- Prometheus metrics at /jobrt/metrics.
  require("api.native.metrics").routes(r, ctx)
end

return M
