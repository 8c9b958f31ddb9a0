-- jobrt.jobs: a simple job manager on top of jobrt.core, for scripts
-- (`jobrt lua`) and custom endpoints (surfaces; plugins may not require
-- it). A job here is {id, name, user, request, result, status, messages},
-- each a string as jobs.schema() declares: request and result are the text
-- (JSON, as a rule) the caller gives, stored and returned as given;
-- messages is one text, to which jobs.set_error adds a line. It is a core
-- job without tasks (surface "jobs" unless told otherwise) whose state the
-- script drives. Operational failures return nil, message, CODE like
-- jobrt.core (a field of the wrong type: "INVALID"); an invalid status
-- name raises.
--
-- Status <-> core state (jobs.status_map()):
--   idle     <- created, suspended           idle     -> created
--   pending  <- queued, awaiting_approval    pending  -> queued
--   running  <- running                      running  -> running
--   finished <- succeeded                    finished -> succeeded
--   error    <- failed, rejected, canceled   error    -> failed
local core = require("jobrt.core")
local json = require("jobrt.json")

local M = {}

M.SURFACE = "jobs"

local TO_STATUS = {
  created = "idle", suspended = "idle",
  queued = "pending", awaiting_approval = "pending",
  running = "running",
  succeeded = "finished",
  failed = "error", rejected = "error", canceled = "error",
}

local TO_STATE = {
  idle = "created", pending = "queued", running = "running", finished = "succeeded", error = "failed",
}

local STATUSES = { "idle", "pending", "running", "finished", "error" }

-- The job as the seed's simple job manager declares it.
local function text_field() return { type = "string", required = false, unique = false, default = "" } end

--- jobs.schema() -> per field {type, required, unique, default, options}
-- (a fresh copy each call).
function M.schema()
  return {
    id = { type = "string", required = true, unique = true },
    name = text_field(),
    user = text_field(),
    request = text_field(),
    result = text_field(),
    messages = text_field(),
    status = { type = "string", required = false, unique = false, default = "idle",
      options = { table.unpack(STATUSES) } },
  }
end

--- jobs.status_map() -> {statuses, to_core = {status = state},
-- from_core = {state = status}}: how a status maps onto core states.
function M.status_map()
  local to_core, from_core = {}, {}
  for k, v in pairs(TO_STATE) do to_core[k] = v end
  for k, v in pairs(TO_STATUS) do from_core[k] = v end
  return { statuses = { table.unpack(STATUSES) }, to_core = to_core, from_core = from_core }
end

local function check_status(status, level)
  if TO_STATE[status] == nil then
    error(string.format("invalid job status %q (use %s)", tostring(status), table.concat(STATUSES, ", ")),
      (level or 1) + 1)
  end
end

-- A stored value as the schema's string: absent is "", a text is itself;
-- jobs stored before fields were strings read as JSON text (a list of
-- messages as its lines).
local function text(v, lines)
  if v == nil or v == json.null then return "" end
  if type(v) == "string" then return v end
  if lines and type(v) == "table" then
    local parts = {}
    for i, m in ipairs(v) do parts[i] = tostring(m) end
    return table.concat(parts, "\n")
  end
  return json.encode(v)
end

-- core job -> simple job
local function simple(job)
  if job == nil then return nil end
  return {
    id = job.id,
    name = text(job.name or job.title),
    user = text(job.owner),
    request = text(job.request),
    result = text(job.result),
    status = TO_STATUS[job.state] or "error",
    messages = text(job.messages, true),
    created_at = job.created_at,
    updated_at = job.updated_at,
  }
end

-- Every field a caller gives is a string (or nil: the default).
local function strings(fields, names)
  for _, name in ipairs(names) do
    local v = fields[name]
    if v ~= nil and type(v) ~= "string" then
      return nil, string.format("%s must be a string%s, got a %s", name,
        (name == "request" or name == "result") and " (JSON text: jobrt.json.encode a table)" or "", type(v))
    end
  end
  return true
end

local function wrap(job, err, code)
  if job == nil then return nil, err, code end
  return simple(job)
end

--- jobs.create(name, user, request, result[, opts]) -> job | nil, err, code.
-- opts.id chooses the id, opts.surface the surface (default "jobs").
function M.create(name, user, request, result, opts)
  opts = opts or {}
  local ok, err = strings({ name = name, user = user, request = request, result = result },
    { "name", "user", "request", "result" })
  if not ok then return nil, err, "INVALID" end
  return wrap(core.submit({
    id = opts.id,
    surface = opts.surface or M.SURFACE,
    owner = user or "",
    title = name,
    name = name,
    request = request,
    result = result,
    messages = "",
  }))
end

--- jobs.find(id) -> job, status | nil, err, code
function M.find(id)
  local job, err, code = core.get(id)
  if not job then return nil, err, code end
  local s = simple(job)
  return s, s.status
end

--- jobs.get(id, status) -> job | nil, err, code. Raises if status is not a
-- valid status name; returns nil, msg, "CONFLICT" if the job is in another.
function M.get(id, status)
  check_status(status, 2)
  local job, err, code = M.find(id)
  if not job then return nil, err, code end
  if job.status ~= status then
    return nil, string.format("job '%s' is %s, not %s", id, job.status, status), "CONFLICT"
  end
  return job
end

-- set's work; line (set_error's message) is added to the messages.
local function change(id, data, status, line)
  data = data or {}
  if type(data) ~= "table" then return nil, "data must be a table", "INVALID" end
  local valid, verr = strings(data, { "name", "request", "result", "messages" })
  if not valid then return nil, verr, "INVALID" end
  local current, err, code = core.get(id)
  if not current then return nil, err, code end
  local changes = {}
  if data.name ~= nil then changes.name, changes.title = data.name, data.name end
  if data.request ~= nil then changes.request = data.request end
  if data.result ~= nil then changes.result = data.result end
  if data.messages ~= nil then changes.messages = data.messages end
  if line ~= nil then
    local before = text(current.messages, true)
    changes.messages = before == "" and line or (before .. "\n" .. line)
  end
  -- update is refused while queued or running: move the state first, then
  -- write, then move it on (the state the caller asked for wins).
  local state = current.state
  if next(changes) ~= nil then
    if state == "queued" or state == "running" then
      local ok, serr, scode = core.set_state(id, "created")
      if not ok then return nil, serr, scode end
    end
    local ok, uerr, ucode = core.update(id, changes)
    if not ok then return nil, uerr, ucode end
    if status == nil and (state == "queued" or state == "running") then
      local back, berr, bcode = core.set_state(id, state)
      if not back then return nil, berr, bcode end
    end
  end
  if status ~= nil then
    local error_text = status == "error" and (line or "failed") or nil
    return wrap(core.set_state(id, TO_STATE[status], error_text))
  end
  return wrap(core.get(id))
end

--- jobs.set(id, data, status) -> job | nil, err, code. data may hold name,
-- request, result and messages, each a string that replaces the job's;
-- status (optional) sets the state.
function M.set(id, data, status)
  if status ~= nil then check_status(status, 2) end
  return change(id, data, status)
end

function M.set_pending(id) return M.set(id, nil, "pending") end
function M.set_running(id) return M.set(id, nil, "running") end
function M.set_finished(id, result) return M.set(id, { result = result }, "finished") end
-- The message (a string) is added to the job's messages as a line.
function M.set_error(id, message)
  if message ~= nil and type(message) ~= "string" then
    return nil, "message must be a string, got a " .. type(message), "INVALID"
  end
  return change(id, nil, "error", message)
end

--- jobs.update_result(id, result) -> job: stores the result (a string) and
-- finishes the job.
function M.update_result(id, result)
  return M.set(id, { result = result }, "finished")
end

--- jobs.results(id) -> result ("" when none yet) | nil, err, code
function M.results(id)
  local job, err, code = M.find(id)
  if not job then return nil, err, code end
  return job.result
end

local function collect(list, state, surface)
  local after
  repeat
    local page, err, code = core.list({ surface = surface, state = state, after = after, limit = 1000 })
    if not page then return nil, err, code end
    for _, j in ipairs(page.jobs) do list[#list + 1] = simple(j) end
    after = page.next
  until after == nil
  return list
end

--- jobs.list([status[, surface]]) -> list of jobs (all of them, oldest first)
function M.list(status, surface)
  surface = surface or M.SURFACE
  local out = json.array({})
  if status == nil then return collect(out, nil, surface) end
  check_status(status, 2)
  for state, s in pairs(TO_STATUS) do
    if s == status then
      local ok, err, code = collect(out, state, surface)
      if not ok then return nil, err, code end
    end
  end
  table.sort(out, function(a, b)
    if a.created_at ~= b.created_at then return (a.created_at or "") < (b.created_at or "") end
    return a.id < b.id
  end)
  return out
end

function M.all() return M.list() end
function M.pending() return M.list("pending") end
function M.running() return M.list("running") end
function M.finished() return M.list("finished") end

--- jobs.delete(id) -> true | nil, err, code (any status)
function M.delete(id)
  local job, err, code = core.get(id)
  if not job then return nil, err, code end
  if (job.state == "queued" or job.state == "running") and #job.tasks == 0 then
    local ok, serr, scode = core.set_state(id, "canceled")
    if not ok then return nil, serr, scode end
  end
  return core.delete(id)
end

return M
