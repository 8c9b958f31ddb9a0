-- Held jobs asked again when what they wait for changes (DESIGN §7): a
-- policy that answers "wait" may say what could change its mind ({owner =
-- true}: a job of the same owner ends; {at = epoch seconds}: that time
-- comes). One coroutine reads the core's event feed; when an owner's job
-- ends it asks the policies again about that owner's held jobs, oldest
-- first, and when a time comes, about the jobs waiting for it. Nothing
-- polls: the feed's wait is bounded by the next time a job waits for.
-- Each re-evaluation runs in a coroutine of its own under the Lua bounds,
-- so a policy that loops or grows without end fails that one job's turn.
local async = require("jobrt.async")
local runtime = require("jobrt.runtime")
local uv = require("luv")

local M = {}

-- A job leaving queued or running frees what a quota counts.
local ENDED = { succeeded = true, failed = true, canceled = true, rejected = true, suspended = true,
                deleted = true }
local LONGEST_WAIT = 3600 * 1000 -- ms; the feed's wait without a time to wake for
local SCAN_PAGE, SCAN_PAGES = 200, 500

local Holds = {}
Holds.__index = Holds

--- holds.new{core =, deadline =, memory =, log =} -> holds. core is
-- jobrt.core; deadline and memory bound each re-evaluation.
function M.new(opts)
  return setmetatable({
    core = opts.core,
    deadline = opts.deadline or 5,
    memory = opts.memory or 64 * 1024 * 1024,
    log = opts.log or function(level, msg) runtime.log(level, msg) end,
    jobs = {},      -- id -> {id, owner, surface, owner_wait, at}
    pipeline_of = function() return nil end,
    stopped = false,
  }, Holds)
end

--- h:note(job, when): job ({id, owner, surface}) is held; when says what
-- it waits for (nil: only an approve releases it).
function Holds:note(job, when)
  if type(job) ~= "table" or type(job.id) ~= "string" then return end
  if type(when) ~= "table" or (not when.owner and not tonumber(when.at)) then
    self.jobs[job.id] = nil
    return
  end
  self.jobs[job.id] = { id = job.id, owner = job.owner, surface = job.surface,
                        owner_wait = when.owner and true or false, at = tonumber(when.at) }
end

-- Ask the surface's policies again about the jobs (ids, in order), each
-- in a bounded coroutine of its own, started from a timer so that it is
-- not nested in the watcher's run; returns when all are done.
function Holds:recheck(ids)
  for _, id in ipairs(ids) do
    local entry = self.jobs[id]
    local surface = entry and entry.surface
    if not surface then
      local job = self.core.get(id)
      surface = job and job.surface
    end
    local pipeline = surface and self.pipeline_of(surface)
    self.jobs[id] = nil
    if pipeline then
      local when, failed
      async.wait(function(wake)
        local t = uv.new_timer()
        t:start(0, 0, function()
          t:close()
          async.spawn(function()
            local err
            when, err = pipeline:recheck(id)
            if err then failed = true end
          end, {
            deadline = self.deadline, memory = self.memory,
            on_done = function() wake() end,
            on_error = function(err, kind)
              self.log("error", string.format("re-evaluating held job %s failed (%s): %s", id, tostring(kind),
                tostring(err)))
              failed = true
              wake()
            end,
          })
        end)
      end)
      -- A policy that failed keeps the job waiting for what it waited for.
      if failed and entry then self.jobs[id] = entry end
      if when then
        local job = self.core.get(id)
        if job then self:note(job, when) end
      end
    end
  end
end

-- The jobs awaiting approval (of one owner, or every one) that keep(entry)
-- selects (all of them without keep), in the store's order: oldest first.
function Holds:select(owner, keep)
  local ids, after = {}, nil
  for _ = 1, SCAN_PAGES do
    local page = self.core.list({ owner = owner, state = "awaiting_approval", limit = SCAN_PAGE, after = after })
    if not page then break end
    for _, row in ipairs(page.jobs) do
      local entry = self.jobs[row.id]
      if not keep or (entry and keep(entry)) then ids[#ids + 1] = row.id end
    end
    if not page.next then break end
    after = page.next
  end
  return ids
end

-- Every job awaiting approval, asked again (at start and after a reload,
-- when the policies may have changed or time passed unobserved).
function Holds:scan()
  self:recheck(self:select(nil))
end

function Holds:on_event(ev)
  if ev.type ~= "job" or type(ev.job) ~= "string" then return end
  -- Events arrive after the fact: a held job is forgotten only once it
  -- has really left awaiting_approval.
  if self.jobs[ev.job] and ev.state ~= "awaiting_approval" and ev.state ~= "created" then
    local now = self.core.get(ev.job)
    if not now or now.state ~= "awaiting_approval" then self.jobs[ev.job] = nil end
  end
  if not ENDED[ev.state] then return end
  local job = self.core.get(ev.job)
  local owner = job and job.owner
  local waiting = false
  for _, e in pairs(self.jobs) do
    if e.owner_wait and (owner == nil or e.owner == owner) then waiting = true break end
  end
  if not waiting then return end
  self:recheck(self:select(owner, function(e) return e.owner_wait end))
end

-- Milliseconds until the earliest time a held job waits for.
function Holds:next_wait()
  local soonest
  for _, e in pairs(self.jobs) do
    if e.at and (not soonest or e.at < soonest) then soonest = e.at end
  end
  if not soonest then return LONGEST_WAIT end
  return math.max(1, math.min(LONGEST_WAIT, math.ceil((soonest - os.time()) * 1000)))
end

--- h:start(pipeline_of): pipeline_of(surface) -> the surface's submit
-- pipeline (nil when not mounted). Scans the held jobs once, then follows
-- the event feed until the daemon stops.
function Holds:start(pipeline_of)
  self.pipeline_of = pipeline_of
  async.spawn(function()
    -- A submit's event ("created") never changes a held job's fate: it
    -- does not wake this watcher.
    local w <close> = self.core.watch(nil, { type = "job", skip = { "created" } })
    self.watcher = w
    self:scan()
    while not self.stopped do
      local ev, why = w:next(self:next_wait())
      if why == "stopping" or self.stopped then break end
      if ev then
        self:on_event(ev)
      else
        local now = os.time()
        local due = false
        for _, e in pairs(self.jobs) do
          if e.at and e.at <= now then due = true break end
        end
        if due then self:recheck(self:select(nil, function(e) return e.at ~= nil and e.at <= now end)) end
      end
    end
  end, {
    on_error = function(err, _, trace)
      self.log("error", "the held jobs' watcher failed: " .. tostring(trace or err))
    end,
  })
end

--- h:use(pipeline_of): after a reload, the new surfaces' pipelines decide;
-- every held job is asked again now.
function Holds:use(pipeline_of)
  self.pipeline_of = pipeline_of
  async.spawn(function() self:scan() end, {
    on_error = function(err, _, trace)
      self.log("error", "re-evaluating held jobs after the reload failed: " .. tostring(trace or err))
    end,
  })
end

-- h:stop(): no more re-evaluations; a watcher waiting is dropped (the
-- daemon's stop_watchers ends it too).
function Holds:stop()
  self.stopped = true
  if self.watcher then
    self.watcher:close()
    self.watcher = nil
  end
end

return M
