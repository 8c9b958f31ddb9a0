-- Sizes, cpu and durations as deployments and jobs write them ("4GiB",
-- "500m", "1h30m"): lpeg grammars that turn them into integers (bytes,
-- millicores) and seconds, or say why not with the offending text quoted.
local lpeg = require("lpeg")

local P, R, S, C, Cc, Ct = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cc, lpeg.Ct

local M = {}

local MAXINT = math.maxinteger
-- Above this a float no longer holds every integer, so sums would be lies.
local MAX_EXACT = 2 ^ 53

-- Multipliers are integers so that sizes stay exact: "1.5KiB" is 1536.
local SIZE_UNITS = {
  [""] = 1, B = 1,
  k = 1000, K = 1000, kB = 1000, KB = 1000,
  M = 1000000, MB = 1000000,
  G = 1000000000, GB = 1000000000,
  T = 1000000000000, TB = 1000000000000,
  P = 1000000000000000, PB = 1000000000000000,
  Ki = 1 << 10, KiB = 1 << 10,
  Mi = 1 << 20, MiB = 1 << 20,
  Gi = 1 << 30, GiB = 1 << 30,
  Ti = 1 << 40, TiB = 1 << 40,
  Pi = 1 << 50, PiB = 1 << 50,
}
local SIZE_UNIT_LIST = "B, k, M, G, T, P, Ki, Mi, Gi, Ti or Pi"

local DURATION_UNITS = { ms = 0.001, s = 1, m = 60, h = 3600, d = 86400 }
local DURATION_UNIT_LIST = "ms, s, m, h or d"

local blank = S(" \t") ^ 0
local digits = R("09") ^ 1
-- A decimal as two strings, integer part and fraction ("" when absent):
-- "1.5" -> "1", "5"; ".5" -> "0", "5".
local decimal = C(digits) * (P(".") * C(digits) + Cc(""))
  + Cc("0") * P(".") * C(digits)
local letters = C(R("az", "AZ") ^ 0)

local size_grammar = blank * decimal * blank * letters * blank * -1
local cpu_grammar = blank * decimal * blank * C(P("m") ^ -1) * blank * -1
local duration_grammar = blank * Ct((Ct(decimal * blank * letters) * blank) ^ 1) * -1

local function quote(v)
  if type(v) ~= "string" then return tostring(v) end
  local s = v
  if #s > 64 then s = s:sub(1, 61) .. "..." end
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\%03d", c:byte())
  end) .. '"'
end

local function fail(what, v, reason)
  return nil, string.format("invalid %s %s: %s", what, quote(v), reason)
end

-- int.frac * mult as an exact integer, or nil and why not.
local function scaled(int, frac, mult)
  local i = math.tointeger(tonumber(int))
  if not i or i > MAXINT // mult then return nil, "too large" end
  local value = i * mult
  frac = frac:gsub("0+$", "")
  if frac == "" then return value end
  if #frac > 15 then return nil, "too many decimal places" end
  local f, scale = math.tointeger(tonumber(frac)), math.tointeger(10 ^ #frac)
  if f > MAXINT // mult then return nil, "too many decimal places" end
  if f * mult % scale ~= 0 then return nil, "fraction" end
  local extra = f * mult // scale
  if value > MAXINT - extra then return nil, "too large" end
  return value + extra
end

local function bad_number(what, v)
  if v ~= v or v == math.huge or v == -math.huge then
    return fail(what, v, "not a finite number")
  end
  if v < 0 then return fail(what, v, "must not be negative") end
  return nil
end

--- units.bytes(v) -> integer bytes | nil, reason. v is a non-negative whole
-- number or a string: "512", "64k", "64KiB", "1.5G", "10MB" (k, M, G, T, P
-- are powers of 1000; Ki, Mi, Gi, Ti, Pi powers of 1024; B is optional).
function M.bytes(v)
  local text = v
  if type(v) == "number" then
    local _, err = bad_number("size", v)
    if err then return nil, err end
    if math.type(v) == "integer" then return v end
    if v >= MAXINT then return fail("size", v, "too large") end
    local i = math.tointeger(v)
    if not i then return fail("size", v, "not a whole number of bytes") end
    return i
  elseif type(v) ~= "string" then
    return nil, string.format('expected a size such as 4096 or "64MiB", got %s', type(v))
  end
  if text:find("^%s*$") then return fail("size", v, "empty") end
  if text:find("^%s*%-") then return fail("size", v, "must not be negative") end
  local int, frac, unit = size_grammar:match(text)
  if not int then
    return fail("size", v, 'expected a number with an optional unit, e.g. "64MiB"')
  end
  local mult = SIZE_UNITS[unit]
  if not mult then
    return fail("size", v, string.format('unknown unit "%s" (use %s)', unit, SIZE_UNIT_LIST))
  end
  local n, err = scaled(int, frac, mult)
  if not n then
    if err == "fraction" then err = "not a whole number of bytes" end
    return fail("size", v, err)
  end
  return n
end

--- units.cpu(v) -> integer millicores | nil, reason. v is cores as a number
-- or string (2, 0.5, "1.5") or millicores as "500m".
function M.cpu(v)
  local text = v
  if type(v) == "number" then
    local _, err = bad_number("cpu", v)
    if err then return nil, err end
    if v > MAX_EXACT / 1000 then return fail("cpu", v, "too large") end
    -- 0.1 * 1000 is 100.00000000000001: allow float noise, not real fractions.
    local m = v * 1000
    local rounded = math.floor(m + 0.5)
    if math.abs(m - rounded) > 1e-6 then
      return fail("cpu", v, "finer than a millicore (1m)")
    end
    return math.tointeger(rounded)
  elseif type(v) ~= "string" then
    return nil, string.format('expected cores (2, 0.5) or millicores ("500m"), got %s', type(v))
  end
  if text:find("^%s*$") then return fail("cpu", v, "empty") end
  if text:find("^%s*%-") then return fail("cpu", v, "must not be negative") end
  local int, frac, milli = cpu_grammar:match(text)
  if not int then
    return fail("cpu", v, 'expected cores ("2", "0.5") or millicores ("500m")')
  end
  local n, err = scaled(int, frac, milli == "m" and 1 or 1000)
  if not n then
    if err == "fraction" then err = "finer than a millicore (1m)" end
    return fail("cpu", v, err)
  end
  return n
end

--- units.duration(v) -> seconds (an integer when whole) | nil, reason. v is
-- seconds as a number or a string, or a string of parts: "30s", "5m",
-- "1h30m", "250ms", "2d" (each unit at most once).
function M.duration(v)
  if type(v) == "number" then
    local _, err = bad_number("duration", v)
    if err then return nil, err end
    if v > MAX_EXACT then return fail("duration", v, "too large") end
    return v
  elseif type(v) ~= "string" then
    return nil, string.format('expected seconds or a duration such as "30s", got %s', type(v))
  end
  if v:find("^%s*$") then return fail("duration", v, "empty") end
  if v:find("^%s*%-") then return fail("duration", v, "must not be negative") end
  local parts = duration_grammar:match(v)
  if not parts then
    return fail("duration", v, 'expected seconds or parts such as "30s", "5m", "1h30m", "250ms"')
  end
  local total, seen = 0, {}
  for _, part in ipairs(parts) do
    local int, frac, unit = part[1], part[2], part[3]
    if unit == "" and #parts == 1 then unit = "s" end
    local scale = DURATION_UNITS[unit]
    if unit == "" then
      return fail("duration", v, "every part needs a unit (" .. DURATION_UNIT_LIST .. ")")
    elseif not scale then
      return fail("duration", v, string.format('unknown unit "%s" (use %s)', unit, DURATION_UNIT_LIST))
    elseif seen[unit] then
      return fail("duration", v, string.format('unit "%s" given twice', unit))
    end
    seen[unit] = true
    total = total + tonumber(int .. "." .. (frac == "" and "0" or frac)) * scale
  end
  if total > MAX_EXACT then return fail("duration", v, "too large") end
  return math.tointeger(total) or total
end

return M
