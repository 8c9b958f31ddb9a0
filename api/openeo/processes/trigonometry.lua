-- openEO trigonometric and hyperbolic processes. Lua 5.4 has no hyperbolic
-- functions, so they are built here from exp/log with care for the ranges
-- where the naive formulas overflow or lose precision.
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null, out = util.null, util.is_null, util.out
local param, returns = meta.param, meta.returns
local NUMN = meta.NUMBER_OR_NULL

local INF = math.huge
local LN2 = math.log(2)

local function sinh(x)
  if math.abs(x) < 1e-5 then return x + x * x * x / 6 end
  local e = math.exp(x)
  return (e - 1 / e) / 2
end

local function cosh(x)
  local e = math.exp(x)
  return (e + 1 / e) / 2
end

local function tanh(x)
  if x > 20 then return 1.0 elseif x < -20 then return -1.0 end
  if math.abs(x) < 1e-5 then return x - x * x * x / 3 end
  local e = math.exp(2 * x)
  return (e - 1) / (e + 1)
end

local function asinh(x)
  local ax = math.abs(x)
  local r
  if ax ~= ax then return x end
  if ax < 1e-5 then
    r = ax
  elseif ax > 1e150 then
    r = math.log(ax) + LN2
  else
    r = math.log(ax + math.sqrt(ax * ax + 1))
  end
  return x < 0 and -r or r
end

local function acosh(x)
  if x > 1e150 then return math.log(x) + LN2 end
  return math.log(x + math.sqrt(x * x - 1))
end

local function atanh(x)
  if math.abs(x) < 1e-5 then return x + x * x * x / 3 end
  return 0.5 * math.log((1 + x) / (1 - x))
end

local CAT = { "math > trigonometric" }

local function unary(id, summary, description, xdesc, rdesc, fn, rschema)
  return {
    id = id, summary = summary,
    description = description .. " Null gives null.",
    categories = CAT,
    parameters = { param("x", xdesc, NUMN) },
    returns = returns(rdesc, rschema or NUMN),
    impl = function(a)
      if is_null(a.x) then return NULL end
      return out(fn(a.x + 0.0))
    end,
  }
end

local ANGLE = "An angle in radians."

return {
  unary("sin", "Sine", "The sine of the angle `x`. Infinite angles give NaN.", ANGLE, "The sine, between -1 and 1.", math.sin),
  unary("cos", "Cosine", "The cosine of the angle `x`. Infinite angles give NaN.", ANGLE, "The cosine, between -1 and 1.", math.cos),
  unary("tan", "Tangent", "The tangent of the angle `x`. Infinite angles give NaN.", ANGLE, "The tangent.", math.tan),
  unary("arcsin", "Inverse sine", "The angle whose sine is `x`; values outside [-1, 1] give NaN.",
    "A number, meaningful in [-1, 1].", "The angle in radians, between -π/2 and π/2.", math.asin),
  unary("arccos", "Inverse cosine", "The angle whose cosine is `x`; values outside [-1, 1] give NaN.",
    "A number, meaningful in [-1, 1].", "The angle in radians, between 0 and π.", math.acos),
  unary("arctan", "Inverse tangent", "The angle whose tangent is `x`.",
    "A number.", "The angle in radians, between -π/2 and π/2.", math.atan),
  {
    id = "arctan2", summary = "Inverse tangent of two numbers",
    description = "The angle between the positive x axis and the point (`x`, `y`), taking the quadrant from the " ..
      "signs of both arguments. If any argument is null, the result is null.",
    categories = CAT,
    parameters = { param("y", "The y coordinate (numerator).", NUMN), param("x", "The x coordinate (denominator).", NUMN) },
    returns = returns("The angle in radians, between -π and π.", NUMN),
    impl = function(a)
      if is_null(a.x) or is_null(a.y) then return NULL end
      return out(math.atan(a.y + 0.0, a.x + 0.0))
    end,
  },
  unary("sinh", "Hyperbolic sine", "The hyperbolic sine of `x`.", "A number.", "The hyperbolic sine.", sinh),
  unary("cosh", "Hyperbolic cosine", "The hyperbolic cosine of `x`.", "A number.", "The hyperbolic cosine, at least 1.", cosh),
  unary("tanh", "Hyperbolic tangent", "The hyperbolic tangent of `x`.", "A number.", "The hyperbolic tangent, between -1 and 1.", tanh),
  unary("arsinh", "Inverse hyperbolic sine", "The number whose hyperbolic sine is `x`.", "A number.",
    "The inverse hyperbolic sine.", asinh),
  unary("arcosh", "Inverse hyperbolic cosine", "The non-negative number whose hyperbolic cosine is `x`; values below 1 give NaN.",
    "A number, meaningful for x >= 1.", "The inverse hyperbolic cosine.", acosh),
  unary("artanh", "Inverse hyperbolic tangent",
    "The number whose hyperbolic tangent is `x`; 1 and -1 give ±Infinity, values outside [-1, 1] give NaN.",
    "A number, meaningful in (-1, 1).", "The inverse hyperbolic tangent.", atanh),
}
