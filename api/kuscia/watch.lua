-- /api/v1/job/watch: Kuscia's event stream over HTTP. A chunked answer of
-- JSON objects written back to back (no separator), Go-encoded: an ADDED
-- event (no "type" key) for each Kuscia job at the start, MODIFIED on each
-- change of a job or one of its tasks, DELETED when it goes, {"type":4}
-- after HEARTBEAT seconds without one, and the end after timeout_seconds.
-- Every watcher reads the core's event sequence; the frame of an event is
-- rendered once, by the first watcher that reads it, and shared through
-- the feed (one per mount), so each further watcher only writes it.
local async = require("jobrt.async")
local encode = require("api.kuscia.encode")
local view = require("api.kuscia.view")

local M = {}

M.HEARTBEAT = 10
M.HEARTBEAT_FRAME = '{"type":4}'
M.ADDED, M.MODIFIED, M.DELETED = 0, 1, 2
-- Frames kept: a watcher this many events behind renders for itself.
M.SPAN = 4096
local LIST_PAGE, LIST_PAGES = 1000, 1000

-- Event types of the core that change what a Kuscia job looks like.
local CHANGES = { job = true, task = true, updated = true }

local Feed = {}
Feed.__index = Feed

--- watch.feed(get, surface) -> feed. get(id) -> the core job or nil
-- (jobrt.core's get); surface: the name whose jobs are Kuscia's.
function M.feed(get, surface)
  return setmetatable({ get = get, surface = surface, frames = {}, low = nil, last = {}, kept = {},
                        rendered = 0 }, Feed)
end

-- Jobs that no longer change until a transition (which moves updated_at).
local SETTLED = { succeeded = true, failed = true, canceled = true, rejected = true }
local LIVE_TASK = { running = true, ready = true }

-- The ADDED frame of a settled job is kept, keyed by its state and
-- updated_at: watchers that start later send it without rendering it.
local function settled_key(job)
  if not SETTLED[job.state] then return nil end
  return job.state .. " " .. tostring(job.updated_at)
end

-- A frame is {text, job = id, object = the JobStatus's own text}: a
-- watcher skips a MODIFIED frame whose object it has just sent for that job.
-- The text is what encode.go("WatchJobEventResponse", ...) writes, put
-- together from the object's text.
local function frame(kind, object)
  local obj = encode.go("JobStatus", object)
  local text = kind == M.ADDED and ('{"object":' .. obj .. "}")
    or ('{"type":' .. kind .. ',"object":' .. obj .. "}")
  return { text = text, job = object.job_id, object = kind ~= M.DELETED and obj or nil }
end

-- A JobStatus to show, remembered as the job's last for its DELETED event.
function Feed:object(job)
  local obj = view.job_status(job)
  self.last[job.id] = obj
  self.rendered = self.rendered + 1
  return obj
end

--- feed:added_row(row) -> the kept ADDED frame of a job as core.list
-- gives it (no tasks), or nil when it must be rendered (feed:added).
function Feed:added_row(row)
  local kept = self.kept[row.id]
  local key = settled_key(row)
  if kept and key and kept.key == key then return kept.frame end
  return nil
end

--- feed:added(job) -> the ADDED frame of a job that exists when a watch
-- starts: the job as it is now.
function Feed:added(job)
  local f = frame(M.ADDED, self:object(job))
  local key = settled_key(job)
  for _, t in ipairs(key and job.tasks or {}) do
    -- A task still stopping changes the job without moving updated_at.
    if LIVE_TASK[t.state] then key = nil break end
  end
  self.kept[job.id] = key and { key = key, frame = f } or nil
  return f
end

--- feed:deleting(job): the job is about to go; its DELETED event shows it as it is now.
function Feed:deleting(job)
  self:object(job)
end

function Feed:render(ev)
  if ev.type == "deleted" then
    local obj = self.last[ev.job]
    self.last[ev.job], self.kept[ev.job] = nil, nil
    return obj and frame(M.DELETED, obj) or false
  end
  if not CHANGES[ev.type] or not ev.job then return false end
  local job = self.get(ev.job)
  if not job or job.surface ~= self.surface then return false end
  local kind = (ev.type == "job" and ev.message == "submitted") and M.ADDED or M.MODIFIED
  return frame(kind, self:object(job))
end

--- feed:frame(ev) -> the event's frame ({text, job, object}), or false
-- when it is no Kuscia job's.
function Feed:frame(ev)
  local seq = ev.seq
  local f = self.frames[seq]
  if f ~= nil then return f end
  f = self:render(ev)
  if self.low == nil then self.low = seq end
  if seq >= self.low then
    self.frames[seq] = f
    while seq - self.low >= M.SPAN do
      self.frames[self.low] = nil
      self.low = self.low + 1
    end
  end
  return f
end

--- watch.serve(s, res, timeout_seconds): the stream, until the timeout
-- (0: none), the client leaves or the daemon stops. s: core, feed, surface.
function M.serve(s, res, timeout)
  local core = s.core
  -- Watch first, then list: a change in between is sent after the ADDED frames.
  local w <close> = core.watch()
  local out = res:stream(200, { ["Content-Type"] = "application/json; charset=utf-8" })
  local alive, sent = true, {}
  local function send(text)
    alive = alive and out:write(text)
    return alive
  end
  local filter = { surface = s.surface, limit = LIST_PAGE }
  for _ = 1, LIST_PAGES do
    local page = core.list(filter)
    if not page then break end
    for _, row in ipairs(page.jobs) do
      local f = s.feed:added_row(row)
      if not f then
        local job = core.get(row.id)
        f = job and s.feed:added(job)
      end
      if f then
        if not send(f.text) then break end
        sent[f.job] = f.object
      end
    end
    if not page.next or not alive then break end
    filter.after = page.next
  end
  local deadline = timeout > 0 and async.now() + timeout or nil
  local last = async.now()
  while alive do
    local now = async.now()
    if deadline and now >= deadline then break end
    local wait = M.HEARTBEAT - (now - last)
    if wait <= 0 then
      send(M.HEARTBEAT_FRAME)
      last = now
    else
      if deadline then wait = math.min(wait, deadline - now) end
      local ev, why = w:next(math.max(1, math.ceil(wait * 1000)))
      if why == "stopping" then break end
      local f = ev and s.feed:frame(ev)
      if f and not (f.object and sent[f.job] == f.object) then
        send(f.text)
        sent[f.job] = f.object
        last = async.now()
      end
    end
  end
  out:close()
end

return M
