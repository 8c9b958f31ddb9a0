-- Approval policy: reject a job any of whose tasks asks for more than the
-- deployment allows one task: cpu, memory, disk, gpus, a time limit, a
-- network mode. The reason names the task and the limit. A task that sets
-- no memory, disk or time limit (0) is over a cap given for it: it would
-- have none.
--
--   plugins:
--     caps: {use: approve.resource_caps, cpu: 4, memory: 8GiB, timeout: 1h, network: [none]}
--   surfaces:
--     native: {approval: [caps]}
local M = {}

M.schema = {
  cpu = { type = "cpu", min = 1, description = "the most cpu one task may ask for" },
  memory = { type = "bytes", min = 1, description = "the most memory one task may ask for" },
  disk = { type = "bytes", min = 1, description = "the most disk one task may ask for" },
  gpu = { type = "integer", min = 0, description = "the most gpus one task may ask for" },
  timeout = { type = "duration", min = 1, description = "the longest time limit one task may have" },
  network = { type = "list", of = { type = "string", one_of = { "none", "allow", "full" } },
    description = "the network modes tasks may use" },
}

local GiB, MiB = 1024 * 1024 * 1024, 1024 * 1024

local function bytes(n)
  if n >= GiB and n % GiB == 0 then return string.format("%d GiB", n // GiB) end
  if n >= MiB and n % MiB == 0 then return string.format("%d MiB", n // MiB) end
  return string.format("%d bytes", n)
end

local function cores(m)
  return string.format("%g cpu", m / 1000)
end

local function seconds(s)
  if s % 3600 == 0 then return string.format("%dh", s // 3600) end
  if s % 60 == 0 then return string.format("%dm", s // 60) end
  return string.format("%gs", s)
end

-- The first limit task t is over, in words, or nil.
local function over(t, o)
  local r = type(t.resources) == "table" and t.resources or {}
  local name = "task " .. tostring(t.alias)
  local cpu, memory, disk = tonumber(r.cpu) or 0, tonumber(r.memory) or 0, tonumber(r.disk) or 0
  if o.cpu and cpu > o.cpu then
    return string.format("%s asks for %s, more than the limit of %s", name, cores(cpu), cores(o.cpu))
  end
  if o.memory then
    if memory <= 0 then return string.format("%s sets no memory limit (the limit is %s)", name, bytes(o.memory)) end
    if memory > o.memory then
      return string.format("%s asks for %s of memory, more than the limit of %s", name, bytes(memory), bytes(o.memory))
    end
  end
  if o.disk then
    if disk <= 0 then return string.format("%s sets no disk limit (the limit is %s)", name, bytes(o.disk)) end
    if disk > o.disk then
      return string.format("%s asks for %s of disk, more than the limit of %s", name, bytes(disk), bytes(o.disk))
    end
  end
  local gpu = tonumber(r.gpu) or 0
  if o.gpu and gpu > o.gpu then
    return string.format("%s asks for %d gpus, more than the limit of %d", name, gpu, o.gpu)
  end
  if o.timeout then
    local limit = tonumber(t.timeout) or 0
    if limit <= 0 then return string.format("%s has no time limit (the limit is %s)", name, seconds(o.timeout)) end
    if limit > o.timeout then
      return string.format("%s has a time limit of %s, more than the limit of %s", name, seconds(limit),
        seconds(o.timeout))
    end
  end
  if o.network then
    local mode = type(t.network) == "table" and t.network.mode or nil
    if mode then
      local allowed = false
      for _, m in ipairs(o.network) do
        if m == mode then allowed = true end
      end
      if not allowed then
        return string.format("%s asks for network %s (allowed: %s)", name, mode, table.concat(o.network, ", "))
      end
    end
  end
  return nil
end

function M.approve(job, ctx)
  for _, t in ipairs(job.tasks or {}) do
    local why = over(t, ctx.options)
    if why then return "reject", why end
  end
  return "accept"
end

return M
