-- openEO date and time processes on RFC 3339 texts. Calendar arithmetic is
-- done on the local date and time as written (the offset is kept, never
-- converted), which is what "adding a month" means to the user.
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null, out = util.null, util.is_null, util.out
local param, returns = meta.param, meta.returns

local UNIT_MS = { millisecond = 1, second = 1000, minute = 60000, hour = 3600000, day = 86400000, week = 604800000 }

-- A leap second (23:59:60) is accepted but never returned: it becomes the
-- first instant of the next minute before any arithmetic.
local function normalize(t)
  if t.S == 60 then return util.local_from_ms(util.epoch_ms(t), t) end
  return t
end

local function add_days(t, n)
  local y, m, d = util.civil_from_days(util.days_from_civil(t.y, t.m, t.d) + n)
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  r.y, r.m, r.d = y, m, d
  return r
end

-- Shifting by months keeps the time and clamps the day to the length of the
-- target month (January 31 + 1 month = February 28 or 29).
local function add_months(t, n)
  local total = t.y * 12 + (t.m - 1) + n
  local r = {}
  for k, v in pairs(t) do r[k] = v end
  r.y, r.m = total // 12, total % 12 + 1
  r.d = math.min(t.d, util.days_in_month(r.y, r.m))
  return r
end

local function shift(t, value, unit)
  if unit == "month" then return add_months(t, value) end
  if unit == "year" then return add_months(t, value * 12) end
  if unit == "day" then return add_days(t, value) end
  if unit == "week" then return add_days(t, value * 7) end
  return util.local_from_ms(util.epoch_ms(t) + value * UNIT_MS[unit], t)
end

-- Months between two instants, fractional: whole calendar months first, then
-- the rest as a share of the following month.
local function months_between(a, b)
  local sign = 1
  if util.epoch_ms(b) < util.epoch_ms(a) then a, b, sign = b, a, -1 end
  local whole = (b.y - a.y) * 12 + (b.m - a.m)
  while whole > 0 and util.epoch_ms(add_months(a, whole)) > util.epoch_ms(b) do whole = whole - 1 end
  local from = util.epoch_ms(add_months(a, whole))
  local to = util.epoch_ms(add_months(a, whole + 1))
  return sign * (whole + (util.epoch_ms(b) - from) / (to - from))
end

local UNITS = { "millisecond", "second", "minute", "hour", "day", "week", "month", "year" }

return {
  {
    id = "date_shift", summary = "Shift a date by a period",
    description = "Adds `value` units (subtracts, if negative) to `date`. Units up to `hour` move the instant and " ..
      "keep the time zone offset as written; `day`, `week`, `month` and `year` change the calendar date and leave " ..
      "the time of day alone. A day that does not exist in the target month becomes that month's last day " ..
      "(2020-01-31 plus one month is 2020-02-29). A date without time stays a date without time (counted from " ..
      "midnight UTC). Leap seconds may be given but never appear in results.",
    categories = { "date & time" },
    parameters = {
      param("date", "The date or date-time to shift.", meta.TEMPORAL),
      param("value", "The number of units to add; negative values subtract.", meta.INTEGER),
      param("unit", "The unit of `value`.", { type = "string", enum = UNITS }),
    },
    returns = returns("The shifted date, in the form of `date` (with or without time).", meta.TEMPORAL),
    impl = function(a)
      local t = normalize(util.parse_temporal(a.date))
      local r = shift(t, math.tointeger(a.value), a.unit)
      r.kind = t.kind
      return util.format_temporal(r)
    end,
  },
  {
    id = "date_difference", summary = "Time between two dates",
    description = "Gives the time from `date1` to `date2` in `unit` (seconds by default), negative when `date2` is " ..
      "earlier. Both are taken as instants, with their time zones. Fixed units give exact fractions; `month` and " ..
      "`year` count whole calendar months first and the rest as a fraction of the next month.",
    categories = { "date & time" }, experimental = true,
    parameters = {
      param("date1", "The start.", meta.TEMPORAL),
      param("date2", "The end.", meta.TEMPORAL),
      param("unit", "The unit of the result.", { type = "string", enum = UNITS }, { default = "second" }),
    },
    returns = returns("The difference.", meta.NUMBER),
    impl = function(a)
      local t1, t2 = normalize(util.parse_temporal(a.date1)), normalize(util.parse_temporal(a.date2))
      if a.unit == "month" or a.unit == "year" then
        local u1 = util.local_from_ms(util.epoch_ms(t1), { offset = 0, zone = "Z", kind = "date-time" })
        local u2 = util.local_from_ms(util.epoch_ms(t2), { offset = 0, zone = "Z", kind = "date-time" })
        local m = months_between(u1, u2)
        return out(a.unit == "year" and m / 12 or m)
      end
      return out((util.epoch_ms(t2) - util.epoch_ms(t1)) / UNIT_MS[a.unit])
    end,
  },
}
