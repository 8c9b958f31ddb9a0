-- Cost estimator from experience: the median duration and cost of the
-- owner's last `samples` succeeded jobs of the same surface and the same
-- shape (as many tasks, on the same images), priced by what they used
-- (cpu-seconds and GiB-seconds of their tasks' measured usage). It says
-- it is an estimate (`basis`); without a job like it, it gives none.
--
--   plugins:
--     history: {use: estimate.history, samples: 5, cpu_second: 0.0001, gib_second: 0.00005, currency: EUR}
--   surfaces:
--     openeo: {estimator: history}
local M = {}

local GiB = 1024 * 1024 * 1024

M.schema = {
  samples = { type = "integer", default = 5, min = 1, max = 100, description = "finished jobs to take the median of" },
  scan = { type = "integer", default = 50, min = 1, max = 200, description = "recent finished jobs looked through" },
  cpu_second = { type = "number", default = 0.0001, min = 0 },
  gib_second = { type = "number", default = 0.00005, min = 0 },
  currency = { type = "string" },
}

-- "2026-03-02T10:00:01.250Z" -> seconds since the epoch (UTC), or nil.
local function epoch(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec = s:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):([%d%.]+)Z$")
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  -- Days from the civil date (proleptic Gregorian), after H. Hinnant.
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end
M.epoch = epoch

-- A job's shape: its task count and sorted images.
local function shape(job)
  local images = {}
  for i, t in ipairs(job.tasks or {}) do images[i] = t.image or "host" end
  table.sort(images)
  return #images .. ":" .. table.concat(images, ",")
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  if n % 2 == 1 then return xs[(n + 1) // 2] end
  return (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local function round(x, places)
  local m = 10 ^ places
  return math.floor(x * m + 0.5) / m
end

function M.estimate(job, ctx)
  local o = ctx.options
  local owner = type(job) == "table" and job.owner or nil
  if type(owner) ~= "string" or not ctx.core then
    return nil, { code = "EstimateUnavailable", message = "An estimate from history needs the job's owner." }
  end
  local recent, err = ctx.core.finished({ owner = owner, limit = o.scan })
  if not recent then return nil, { code = "EstimateUnavailable", message = tostring(err) } end
  local want = shape(job)
  local durations, costs = {}, {}
  for _, j in ipairs(recent) do
    if j.id ~= job.id and shape(j) == want then
      local started, ended = epoch(j.started_at), epoch(j.ended_at)
      if started and ended and ended >= started then
        local cost = 0
        for _, t in ipairs(j.tasks or {}) do
          local u = type(t.usage) == "table" and t.usage or {}
          local wall = (tonumber(u.wall_ms) or 0) / 1000
          cost = cost + (tonumber(u.cpu_ms) or 0) / 1000 * o.cpu_second
            + (tonumber(u.max_rss_bytes) or 0) / GiB * wall * o.gib_second
        end
        durations[#durations + 1] = ended - started
        costs[#costs + 1] = cost
        if #durations >= o.samples then break end
      end
    end
  end
  if #durations == 0 then
    return nil, { code = "EstimateUnavailable",
      message = string.format("No finished job of %s like this one (%s) to estimate from.", owner, want) }
  end
  return {
    costs = round(median(costs), 6),
    duration = math.ceil(median(durations)),
    currency = o.currency,
    basis = string.format("an estimate: the median of %d finished job%s of %s with the same shape",
      #durations, #durations == 1 and "" or "s", owner),
  }
end

return M
