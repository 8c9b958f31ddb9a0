-- openEO math processes on single numbers: arithmetic, rounding, logarithms,
-- constants and scaling. Computations are IEEE 754 doubles (NaN and ±Infinity
-- are ordinary results); null (no-data) in gives null out.
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null, out = util.null, util.is_null, util.out
local param, returns = meta.param, meta.returns
local NUM, NUMN = meta.NUMBER, meta.NUMBER_OR_NULL

local INF, NAN = math.huge, 0 / 0
-- 0/0 folds to a constant with the sign bit set on some compilers; both are
-- NaN, and only NaN-ness is ever observed.

local function unary(id, summary, description, xdesc, rdesc, fn, extra)
  local def = {
    id = id, summary = summary, description = description,
    categories = extra and extra.categories or { "math" },
    parameters = { param("x", xdesc, NUMN) },
    returns = returns(rdesc, extra and extra.returns or NUMN),
    impl = function(a)
      if is_null(a.x) then return NULL end
      return out(fn(a.x + 0.0))
    end,
  }
  return def
end

local function binary(id, summary, description, names, descs, rdesc, fn, categories)
  local xn, yn = names[1], names[2]
  return {
    id = id, summary = summary, description = description,
    categories = categories or { "math" },
    parameters = { param(xn, descs[1], NUMN), param(yn, descs[2], NUMN) },
    returns = returns(rdesc, NUMN),
    impl = function(a)
      local x, y = a[xn], a[yn]
      if is_null(x) or is_null(y) then return NULL end
      return out(fn(x + 0.0, y + 0.0))
    end,
  }
end

local NODATA = " If any argument is null (no-data), the result is null."

-- Round half to even at 10^-p. Scaling by a power of ten first is what the
-- openEO examples expect (0.35 at p=1 gives 0.4: 0.35*10 is exactly 3.5).
local function round_half_even(x, p)
  if x ~= x or x == INF or x == -INF then return x end
  local scaled
  if p >= 0 then scaled = x * 10.0 ^ p else scaled = x / 10.0 ^ (-p) end
  if scaled ~= scaled or scaled == INF or scaled == -INF then return x end
  local r = math.floor(scaled)
  local diff = scaled - r
  if diff > 0.5 or (diff == 0.5 and r % 2 ~= 0) then r = r + 1 end
  if p >= 0 then return r / 10.0 ^ p end
  return r * 10.0 ^ (-p)
end

local function truncate(x)
  if x ~= x or x == INF or x == -INF then return x end
  if x >= 0 then return math.floor(x) end
  return math.ceil(x)
end

-- Floored modulo (the sign follows the divisor), with openEO's answers for a
-- zero divisor and the IEEE answer for an infinite one.
local function modulo(x, y)
  if x ~= x or y ~= y then return NAN end
  if y == 0 then
    if x > 0 then return INF elseif x < 0 then return -INF end
    return NAN
  end
  if x == INF or x == -INF then return NAN end
  -- An infinite divisor leaves x as it is, whatever the signs (as C's fmod
  -- does; floored division would give ±Infinity for opposite signs).
  if y == INF or y == -INF then return x end
  return x % y
end

return {
  unary("absolute", "Absolute value",
    "Gives the magnitude of a number without its sign, |x|. Null gives null.",
    "The number.", "The absolute value, never negative.", math.abs,
    { returns = { type = { "number", "null" }, minimum = 0 } }),

  binary("add", "Addition of two numbers",
    "Adds `y` to `x`." .. NODATA .. " Infinities follow IEEE 754 (Infinity plus -Infinity is NaN).",
    { "x", "y" }, { "The first summand.", "The second summand." }, "The sum x + y.",
    function(x, y) return x + y end),

  binary("subtract", "Subtraction of two numbers",
    "Subtracts `y` from `x`." .. NODATA .. " Infinities follow IEEE 754.",
    { "x", "y" }, { "The minuend.", "The subtrahend." }, "The difference x - y.",
    function(x, y) return x - y end),

  {
    id = "multiply", summary = "Multiplication of two numbers",
    description = "Multiplies `x` by `y`." .. NODATA .. " Infinities and NaN follow IEEE 754.",
    categories = { "math" },
    parameters = { param("x", "The multiplier.", NUMN), param("y", "The multiplicand.", NUMN) },
    returns = returns("The product x * y.", NUMN),
    exceptions = { MultiplicandMissing = { message = "Multiplication needs two numbers." } },
    impl = function(a)
      if is_null(a.x) or is_null(a.y) then return NULL end
      return out((a.x + 0.0) * (a.y + 0.0))
    end,
  },

  {
    id = "divide", summary = "Division of two numbers",
    description = "Divides `x` by `y`." .. NODATA ..
      " Dividing by zero gives Infinity for a positive `x`, -Infinity for a negative `x` and NaN for zero, as in IEEE 754.",
    categories = { "math" },
    parameters = { param("x", "The dividend.", NUMN), param("y", "The divisor.", NUMN) },
    returns = returns("The quotient x / y.", NUMN),
    exceptions = { DivisionByZero = { message = "Division by zero is not supported." } },
    impl = function(a)
      if is_null(a.x) or is_null(a.y) then return NULL end
      return out((a.x + 0.0) / (a.y + 0.0))
    end,
  },

  {
    id = "mod", summary = "Modulo (remainder of a division)",
    description = "The remainder of dividing `x` by `y`; it takes the sign of the divisor `y` " ..
      "(floored division), so mod(-27, 5) is 3 and mod(27, -5) is -3; an infinite divisor gives `x`." .. NODATA ..
      " A zero divisor gives Infinity for a positive `x`, -Infinity for a negative `x` and NaN for zero.",
    categories = { "math" },
    parameters = { param("x", "The dividend.", NUMN), param("y", "The divisor.", NUMN) },
    returns = returns("The remainder.", NUMN),
    exceptions = { DivisionByZero = { message = "Division by zero is not supported." } },
    impl = function(a)
      if is_null(a.x) or is_null(a.y) then return NULL end
      return out(modulo(a.x + 0.0, a.y + 0.0))
    end,
  },

  binary("power", "Exponentiation",
    "Raises `base` to the power `p`." .. NODATA .. " Special values follow the C library's pow().",
    { "base", "p" }, { "The base.", "The exponent." }, "The value of base raised to p.",
    function(b, p) return b ^ p end, { "math", "math > exponential & logarithmic" }),

  unary("sqrt", "Square root",
    "The non-negative square root of `x`; negative numbers give NaN. Null gives null.",
    "The number.", "The square root.", math.sqrt,
    { categories = { "math", "math > exponential & logarithmic" } }),

  {
    id = "exp", summary = "Exponentiation to the base e",
    description = "Computes e raised to the power `p`. Null gives null.",
    categories = { "math > exponential & logarithmic" },
    parameters = { param("p", "The exponent.", NUMN) },
    returns = returns("e to the power p, between 0 and Infinity.", NUMN),
    impl = function(a)
      if is_null(a.p) then return NULL end
      return out(math.exp(a.p + 0.0))
    end,
  },

  unary("ln", "Natural logarithm",
    "The logarithm of `x` to the base e. Zero gives -Infinity, negative numbers give NaN. Null gives null.",
    "The number; meaningful for x >= 0.", "The natural logarithm.", math.log,
    { categories = { "math > exponential & logarithmic" } }),

  {
    id = "log", summary = "Logarithm to a base",
    description = "The logarithm of `x` to the base `base`. Zero gives -Infinity, negative numbers give NaN." .. NODATA,
    categories = { "math > exponential & logarithmic" },
    parameters = { param("x", "The number; meaningful for x >= 0.", NUMN), param("base", "The base of the logarithm.", NUMN) },
    returns = returns("The logarithm.", NUMN),
    impl = function(a)
      if is_null(a.x) or is_null(a.base) then return NULL end
      local x, b = a.x + 0.0, a.base + 0.0
      if b == 10 then return out(math.log(x, 10)) end
      if b == 2 then return out(math.log(x, 2)) end
      return out(math.log(x) / math.log(b))
    end,
  },

  unary("sgn", "Signum",
    "Gives 1 for positive numbers, -1 for negative numbers and 0 for zero. NaN stays NaN and null stays null.",
    "The number.", "The sign of x: -1, 0 or 1.",
    function(x)
      if x > 0 then return 1 elseif x < 0 then return -1 elseif x == 0 then return 0 end
      return x
    end),

  {
    id = "clip", summary = "Clip a number to a range",
    description = "Limits `x` to the range [`min`, `max`]: smaller values become `min`, larger ones `max`. " ..
      "A `max` below `min` is an error (`MinMaxSwapped`). A NaN anywhere gives NaN; a null `x` gives null.",
    categories = { "math" },
    parameters = {
      param("x", "The number to clip.", NUMN),
      param("min", "The lower bound.", NUM),
      param("max", "The upper bound.", NUM),
    },
    returns = returns("The clipped number.", NUMN),
    exceptions = { MinMaxSwapped = { message = "The minimum must not be greater than the maximum." } },
    impl = function(a)
      local lo, hi = a.min + 0.0, a.max + 0.0
      if lo > hi then return util.fail("MinMaxSwapped", "clip: the minimum " .. util.number_text(lo) ..
        " is greater than the maximum " .. util.number_text(hi) .. ".") end
      if is_null(a.x) then return NULL end
      local x = a.x + 0.0
      if x ~= x or lo ~= lo or hi ~= hi then return NAN end
      if x < lo then x = lo elseif x > hi then x = hi end
      return out(x)
    end,
  },

  unary("int", "Integer part of a number",
    "Drops the fractional part of `x`, rounding towards zero (int(-3.5) is -3, unlike floor). " ..
      "NaN and infinities are returned unchanged; null gives null.",
    "The number.", "The integer part.", truncate,
    { categories = { "math", "math > rounding" } }),

  unary("floor", "Round down",
    "The greatest integer not greater than `x` (floor(-3.5) is -4). NaN and infinities are returned unchanged; null gives null.",
    "The number.", "The rounded number.",
    function(x) if x ~= x or x == INF or x == -INF then return x end return math.floor(x) end,
    { categories = { "math > rounding" } }),

  unary("ceil", "Round up",
    "The least integer not less than `x` (ceil(-3.5) is -3). NaN and infinities are returned unchanged; null gives null.",
    "The number.", "The rounded number.",
    function(x) if x ~= x or x == INF or x == -INF then return x end return math.ceil(x) end,
    { categories = { "math > rounding" } }),

  {
    id = "round", summary = "Round to a precision",
    description = "Rounds `x` to `p` decimal places; a negative `p` rounds to tens, hundreds and so on. " ..
      "Ties go to the even neighbour (banker's rounding): round(2.5) is 2, round(3.5) is 4. " ..
      "NaN and infinities are returned unchanged; null gives null.",
    categories = { "math > rounding" },
    parameters = {
      param("x", "The number to round.", NUMN),
      param("p", "Digits after the decimal point; negative values round to powers of ten.", meta.INTEGER, { default = 0 }),
    },
    returns = returns("The rounded number.", NUMN),
    impl = function(a)
      if is_null(a.x) then return NULL end
      return out(round_half_even(a.x + 0.0, math.tointeger(a.p) or 0))
    end,
  },

  {
    id = "constant", summary = "A constant value",
    description = "Returns its argument unchanged, so that one value can be referenced from several nodes.",
    categories = { "math > constants" },
    parameters = { param("x", "The value.", meta.ANY) },
    returns = returns("The value of `x`.", meta.ANY),
    impl = function(a) return a.x end,
  },

  {
    id = "e", summary = "Euler's number (e)",
    description = "The base of the natural logarithm, about 2.71828.",
    categories = { "math > constants", "math > exponential & logarithmic" },
    parameters = util.array(),
    returns = returns("The value of e.", NUM),
    impl = function() return math.exp(1) end,
  },

  {
    id = "pi", summary = "Pi (π)",
    description = "The ratio of a circle's circumference to its diameter, about 3.14159.",
    categories = { "math > constants", "math > trigonometric" },
    parameters = util.array(),
    returns = returns("The value of pi.", NUM),
    impl = function() return math.pi end,
  },

  {
    id = "nan", summary = "Not a number (NaN)",
    description = "Gives the IEEE 754 value NaN. JSON has no NaN, so a NaN result is written as null.",
    categories = { "math > constants" }, experimental = true,
    parameters = util.array(),
    returns = returns("NaN.", NUM),
    impl = function() return NAN end,
  },

  {
    id = "linear_scale_range", summary = "Linear transformation between two ranges",
    description = "Maps `x` from the input range [`inputMin`, `inputMax`] onto the output range " ..
      "[`outputMin`, `outputMax`] as ((x - inputMin) / (inputMax - inputMin)) * (outputMax - outputMin) + outputMin. " ..
      "`x` is first clipped to the input range, so the result stays within the output range. " ..
      "Either range may be reversed. Null gives null.",
    categories = { "math" },
    parameters = {
      param("x", "The number to transform.", NUMN),
      param("inputMin", "The lower end of the input range.", NUM),
      param("inputMax", "The upper end of the input range.", NUM),
      param("outputMin", "The value the lower end of the input range maps to.", NUM, { default = 0 }),
      param("outputMax", "The value the upper end of the input range maps to.", NUM, { default = 1 }),
    },
    returns = returns("The transformed number.", NUMN),
    impl = function(a)
      if is_null(a.x) then return NULL end
      local x, imin, imax = a.x + 0.0, a.inputMin + 0.0, a.inputMax + 0.0
      local omin, omax = a.outputMin + 0.0, a.outputMax + 0.0
      local lo, hi = math.min(imin, imax), math.max(imin, imax)
      if x < lo then x = lo elseif x > hi then x = hi end
      return out(((x - imin) / (imax - imin)) * (omax - omin) + omin)
    end,
  },

  {
    id = "normalized_difference", summary = "Normalized difference of two values",
    description = "Computes (x - y) / (x + y), the form of indices such as NDVI (x = near infrared, y = red)." .. NODATA,
    categories = { "math > indices", "vegetation indices" },
    parameters = { param("x", "The first value (band).", NUMN), param("y", "The second value (band).", NUMN) },
    returns = returns("The normalized difference, between -1 and 1 for non-negative inputs.", NUMN),
    impl = function(a)
      if is_null(a.x) or is_null(a.y) then return NULL end
      local x, y = a.x + 0.0, a.y + 0.0
      return out((x - y) / (x + y))
    end,
  },
}
