-- Approval policy: jobs run only within given hours, and jobs carrying
-- given labels wait for someone to release them. A job started outside
-- every window waits in awaiting_approval and is released by itself when
-- the next window opens (no polling: the daemon wakes at that time); a job
-- with a held label waits until an administrator approves it. Hours are
-- "HH:MM-HH:MM" in UTC (a window may span midnight), on the given days.
--
--   plugins:
--     nightly: {use: approve.schedule, hours: ["22:00-06:00"], days: [mon, tue, wed, thu, fri]}
--     frozen:  {use: approve.schedule, labels: {freeze: "*"}}
--   surfaces:
--     native: {approval: [nightly, frozen]}
local M = {}

local DAYS = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" }

M.schema = {
  hours = { type = "list", of = { type = "string", pattern = "^%d%d?:%d%d%-%d%d?:%d%d$",
    pattern_text = 'expected a window like "22:00-06:00"' },
    description = "UTC windows in which jobs may start; none: any time" },
  days = { type = "list", of = { type = "string", one_of = DAYS },
    description = "the days the windows open on (the day a window starts); none: every day" },
  labels = { type = "map", of = { type = "string" }, default = {},
    description = 'labels that hold a job until an approve ("*": any value)' },
}

-- "22:00-06:00" -> start and length in minutes, or nil.
local function window(text)
  local h1, m1, h2, m2 = text:match("^(%d%d?):(%d%d)%-(%d%d?):(%d%d)$")
  h1, m1, h2, m2 = tonumber(h1), tonumber(m1), tonumber(h2), tonumber(m2)
  if not h1 or h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 then return nil end
  local start, stop = h1 * 60 + m1, h2 * 60 + m2
  local len = (stop - start) % 1440
  if len == 0 then len = 1440 end
  return start, len
end

local function day_allowed(days, t)
  if not days or #days == 0 then return true end
  local name = DAYS[os.date("!*t", t).wday]
  for _, d in ipairs(days) do
    if d == name then return true end
  end
  return false
end

-- open(now, o) -> true | false, the next opening (epoch seconds) or nil.
function M.open(now, o)
  if not o.hours or #o.hours == 0 then return true end
  local midnight = now - now % 86400
  local next_open
  for _, text in ipairs(o.hours) do
    local start, len = window(text)
    if start then
      for d = -1, 7 do
        local s = midnight + d * 86400 + start * 60
        if day_allowed(o.days, s) then
          if now >= s and now < s + len * 60 then return true end
          if s > now and (not next_open or s < next_open) then next_open = s end
        end
      end
    end
  end
  return false, next_open
end

function M.approve(job, ctx)
  local o = ctx.options
  for key, want in pairs(o.labels or {}) do
    local have = type(job.labels) == "table" and job.labels[key] or nil
    if have ~= nil and (want == "*" or want == have) then
      return "wait", string.format("the label %s=%s holds the job until it is approved", key, tostring(have))
    end
  end
  local now = ctx.now or os.time()
  local ok, next_open = M.open(now, o)
  if ok then return "accept" end
  if not next_open then return "wait", "no window of the schedule ever opens" end
  return "wait", "outside the hours jobs may start (" .. table.concat(o.hours, ", ") .. " UTC); next at "
    .. os.date("!%Y-%m-%dT%H:%M:%SZ", next_open), { at = next_open }
end

return M
