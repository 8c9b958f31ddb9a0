-- openEO comparison processes: equality with openEO's strict typing, order
-- comparisons (numbers only), range checks and the value tests (NaN,
-- no-data, validity, infinity).
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null = util.null, util.is_null
local param, returns = meta.param, meta.returns

local INF = math.huge

local OPERANDS = {
  param("x", "The first operand.", meta.SCALAR_OR_NULL),
  param("y", "The second operand.", meta.SCALAR_OR_NULL),
}

local function is_number(v) return type(v) == "number" end

local function order(id, summary, phrase, strict_fn, inclusive)
  local rule = inclusive
    and "Operands that are equal (see `eq`) give true; otherwise both must be numbers, or the result is false."
    or "Only numbers are ordered: if either operand is not a number (strings, including dates, and booleans), the result is false."
  return {
    id = id, summary = summary,
    description = "Checks whether `x` is " .. phrase .. " `y`. " .. rule ..
      " NaN compares false with everything. If either operand is null, the result is null.",
    categories = { "comparison" },
    parameters = OPERANDS,
    returns = returns("true or false, or null if an operand is null.", meta.BOOLEAN_OR_NULL),
    impl = function(a)
      local x, y = a.x, a.y
      if is_null(x) or is_null(y) then return NULL end
      if inclusive and util.equals(x, y) == true then return true end
      if not (is_number(x) and is_number(y)) then return false end
      return strict_fn(x, y)
    end,
  }
end

local EQ_EXTRA = {
  param("delta", "For two numbers: the largest difference that still counts as equal. Null means exact comparison.",
    { type = { "number", "null" }, minimumExclusive = 0 }, { default = NULL }),
  param("case_sensitive", "For two strings: `false` compares them ignoring case.", meta.BOOLEAN, { default = true }),
}

local function with_eq_extra()
  return { OPERANDS[1], OPERANDS[2], EQ_EXTRA[1], EQ_EXTRA[2] }
end

local EQ_RULES = " Types are compared strictly: the number 1 differs from the string \"1\" and from true, but equals 1.0. " ..
  "Dates are compared as plain strings. Arrays and objects are never equal. NaN is not equal to anything, itself included. " ..
  "If either operand is null, the result is null."

local function temporal_value(s)
  local t = util.parse_temporal(s)
  if not t then return nil end
  return t
end

-- date_between compares instants, except that a bare time of day ("10:00:00")
-- is compared with the time-of-day part of the others.
local function comparable(values)
  local any_time = false
  for i, v in ipairs(values) do
    if v.kind == "time" then any_time = true end
  end
  local out = {}
  for i, v in ipairs(values) do
    if any_time then
      local l = util.local_from_ms(util.epoch_ms(v), { offset = 0, kind = v.kind, zone = "Z" })
      out[i] = (l.H * 3600 + l.M * 60 + l.S) * 1000 + l.ms
    else
      out[i] = util.epoch_ms(v)
    end
  end
  return out
end

return {
  {
    id = "eq", summary = "Equal to comparison",
    description = "Checks whether `x` equals `y`." .. EQ_RULES,
    categories = { "texts", "comparison" },
    parameters = with_eq_extra(),
    returns = returns("true if equal, false if not, null if an operand is null.", meta.BOOLEAN_OR_NULL),
    impl = function(a) return util.equals(a.x, a.y, a.delta, a.case_sensitive) end,
  },
  {
    id = "neq", summary = "Not equal to comparison",
    description = "Checks whether `x` differs from `y`; the opposite of `eq`." .. EQ_RULES:gsub("NaN is not equal to anything, itself included", "NaN differs from everything, itself included"),
    categories = { "texts", "comparison" },
    parameters = with_eq_extra(),
    returns = returns("true if different, false if equal, null if an operand is null.", meta.BOOLEAN_OR_NULL),
    impl = function(a)
      local r = util.equals(a.x, a.y, a.delta, a.case_sensitive)
      if r == NULL then return NULL end
      return not r
    end,
  },
  order("gt", "Greater than comparison", "strictly greater than", function(x, y) return x > y end),
  order("gte", "Greater than or equal to comparison", "greater than or equal to", function(x, y) return x >= y end, true),
  order("lt", "Less than comparison", "strictly less than", function(x, y) return x < y end),
  order("lte", "Less than or equal to comparison", "less than or equal to", function(x, y) return x <= y end, true),
  {
    id = "between", summary = "Between comparison",
    description = "Checks whether `x` lies within [`min`, `max`], or [`min`, `max`) when `exclude_max` is true. " ..
      "Values that are not numbers give false, and so do swapped bounds (`min` greater than `max`). " ..
      "A null `x` gives null.",
    categories = { "comparison" },
    parameters = {
      param("x", "The value to check.", meta.ANY),
      param("min", "The lower bound, inclusive.", meta.NUMBER),
      param("max", "The upper bound, inclusive unless `exclude_max` is true.", meta.NUMBER),
      param("exclude_max", "Whether `max` itself lies outside the range.", meta.BOOLEAN, { default = false }),
    },
    returns = returns("true if `x` is within the bounds, null if `x` is null, false otherwise.", meta.BOOLEAN_OR_NULL),
    impl = function(a)
      local x = a.x
      if is_null(x) then return NULL end
      if type(x) ~= "number" or a.min > a.max then return false end
      if x < a.min then return false end
      if a.exclude_max then return x < a.max end
      return x <= a.max
    end,
  },
  {
    id = "date_between", summary = "Between comparison for dates and times",
    description = "Checks whether the instant `x` lies within [`min`, `max`], or [`min`, `max`) when `exclude_max` " ..
      "is true. Dates and date-times are compared as instants (time zones taken into account, a date meaning " ..
      "midnight UTC); when any of the three is a bare time of day, the times of day are compared. " ..
      "Swapped bounds give false. A null `x` gives null.",
    categories = { "comparison", "date & time" },
    parameters = {
      param("x", "The date, date-time or time to check; null gives null.",
        { meta.TEMPORAL_OR_TIME[1], meta.TEMPORAL_OR_TIME[2], meta.TEMPORAL_OR_TIME[3], { type = "null" } }),
      param("min", "The lower bound, inclusive.", meta.TEMPORAL_OR_TIME),
      param("max", "The upper bound, inclusive unless `exclude_max` is true.", meta.TEMPORAL_OR_TIME),
      param("exclude_max", "Whether `max` itself lies outside the range.", meta.BOOLEAN, { default = false }),
    },
    returns = returns("true if `x` is within the bounds, false otherwise.", meta.BOOLEAN_OR_NULL),
    impl = function(a)
      if is_null(a.x) then return NULL end
      local x, lo, hi = temporal_value(a.x), temporal_value(a.min), temporal_value(a.max)
      local v = comparable({ x, lo, hi })
      if v[2] > v[3] or v[1] < v[2] then return false end
      if a.exclude_max then return v[1] < v[3] end
      return v[1] <= v[3]
    end,
  },
  {
    id = "is_nan", summary = "Value is not a number",
    description = "Checks whether `x` is the IEEE 754 value NaN. Everything else, null and strings such as \"NaN\" included, gives false.",
    categories = { "comparison", "math > constants" },
    parameters = { param("x", "The value to check.", meta.ANY) },
    returns = returns("true for NaN, false otherwise.", meta.BOOLEAN),
    impl = function(a) return util.is_nan(a.x) end,
  },
  {
    id = "is_nodata", summary = "Value is a no-data value",
    description = "Checks whether `x` is the no-data value (null). NaN is not a no-data value here, and an array of nulls is an array, so neither counts.",
    categories = { "comparison" },
    parameters = { param("x", "The value to check.", meta.ANY) },
    returns = returns("true for null, false otherwise.", meta.BOOLEAN),
    impl = function(a) return is_null(a.x) end,
  },
  {
    id = "is_valid", summary = "Value is valid data",
    description = "Checks whether `x` is valid: anything but null, NaN and ±Infinity. Strings, arrays and objects are always valid, whatever they hold.",
    categories = { "comparison" },
    parameters = { param("x", "The value to check.", meta.ANY) },
    returns = returns("true if valid, false otherwise.", meta.BOOLEAN),
    impl = function(a)
      local x = a.x
      if is_null(x) then return false end
      if type(x) == "number" then return x == x and x ~= INF and x ~= -INF end
      return true
    end,
  },
  {
    id = "is_infinite", summary = "Value is an infinite number",
    description = "Checks whether `x` is +Infinity or -Infinity. Everything else, NaN, null and strings such as \"inf\" included, gives false.",
    categories = { "comparison" }, experimental = true,
    parameters = { param("x", "The value to check.", meta.ANY) },
    returns = returns("true for ±Infinity, false otherwise.", meta.BOOLEAN),
    impl = function(a) return a.x == INF or a.x == -INF end,
  },
}
