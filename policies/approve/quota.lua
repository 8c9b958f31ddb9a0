-- Approval policy: per owner, at most `max_active` jobs queued or running
-- at once (default 10) and, when given, at most `max_cpu` and `max_memory`
-- asked for by their unfinished tasks, counted across every surface
-- through the policy's read-only view of the core. A job beyond that
-- waits in awaiting_approval (`over: wait`, the default) and is released
-- by itself when one of the owner's jobs ends and it fits again; with
-- `over: reject` it is rejected.
--
--   plugins:
--     quota: {use: approve.quota, max_active: 4, max_cpu: 8, max_memory: 16GiB}
--   surfaces:
--     native: {approval: [quota]}
local M = {}

M.schema = {
  max_active = { type = "integer", default = 10, min = 0,
    description = "jobs an owner may have queued or running at once" },
  max_cpu = { type = "cpu", min = 0,
    description = "cpu the unfinished tasks of an owner's active jobs may ask for together" },
  max_memory = { type = "bytes", min = 0,
    description = "memory the unfinished tasks of an owner's active jobs may ask for together" },
  over = { type = "string", one_of = { "wait", "reject" }, default = "wait",
    description = "what becomes of a job beyond the quota" },
}

local GiB, MiB = 1024 * 1024 * 1024, 1024 * 1024

local function cores(m)
  return string.format("%g cpu", m / 1000)
end

local function bytes(n)
  if n >= GiB then return string.format("%g GiB", math.floor(n / GiB * 100 + 0.5) / 100) end
  return string.format("%g MiB", math.floor(n / MiB * 100 + 0.5) / 100)
end

-- What this job asks for: its tasks' resources together.
local function demand(job)
  local cpu, memory = 0, 0
  for _, t in ipairs(job.tasks or {}) do
    local r = type(t.resources) == "table" and t.resources or {}
    cpu = cpu + (tonumber(r.cpu) or 0)
    memory = memory + (tonumber(r.memory) or 0)
  end
  return cpu, memory
end

function M.approve(job, ctx)
  local o = ctx.options
  local max = o.max_active or 10
  local owner = job.owner
  if type(owner) ~= "string" or owner == "" then return "accept" end
  -- Counting is cheap; summing resources reads each active job.
  local used, err
  if o.max_cpu or o.max_memory then
    used, err = ctx.core.usage({ owner = owner })
  else
    local n
    n, err = ctx.core.count({ owner = owner, state = { "queued", "running" } })
    used = n and { jobs = n, cpu = 0, memory = 0 }
  end
  if not used then error("cannot count the jobs of " .. owner .. ": " .. tostring(err)) end
  local why
  if used.jobs >= max then
    why = string.format("%s has %d jobs queued or running (the quota is %d)", owner, used.jobs, max)
  else
    local cpu, memory = demand(job)
    if o.max_cpu and used.cpu + cpu > o.max_cpu then
      why = string.format("%s's jobs ask for %s in flight and this one %s more (the quota is %s)",
        owner, cores(used.cpu), cores(cpu), cores(o.max_cpu))
    elseif o.max_memory and used.memory + memory > o.max_memory then
      why = string.format("%s's jobs ask for %s of memory in flight and this one %s more (the quota is %s)",
        owner, bytes(used.memory), bytes(memory), bytes(o.max_memory))
    end
  end
  if not why then return "accept" end
  if o.over == "reject" then return "reject", why end
  -- Asked again when one of the owner's jobs ends.
  return "wait", why, { owner = true }
end

return M
