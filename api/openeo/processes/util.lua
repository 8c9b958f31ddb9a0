-- Shared helpers for the openEO process implementations: the no-data value,
-- arrays and labeled arrays, number normalisation, openEO's equality, Unicode
-- case folding and RFC 3339 dates. Pure Lua; loaded by every category module.
local json = require("jobrt.json")

local M = {}

local NULL = json.null
M.null = NULL

-- Labeled arrays carry their labels beside the values, in a weak side table,
-- so that they still encode (and behave) as plain arrays everywhere else.
local LABELS = setmetatable({}, { __mode = "k" })

function M.is_null(v)
  return v == nil or v == NULL
end

function M.array(t)
  return json.array(t or {})
end

--- labeled(values, labels) -> values, marked as a labeled array.
function M.labeled(values, labels)
  local t = json.array(values)
  LABELS[t] = json.array(labels)
  return t
end

--- labels_of(t) -> the labels of a labeled array, or nil.
function M.labels_of(t)
  if type(t) ~= "table" then return nil end
  return LABELS[t]
end

-- Decoded arrays are marked by jobrt.json; an unmarked table counts as an
-- array when it is empty or has a first element (tests and impls build such).
function M.is_array(v)
  if type(v) ~= "table" then return false end
  if json.is_array(v) or LABELS[v] then return true end
  if getmetatable(v) ~= nil then return false end
  return rawlen(v) > 0 or next(v) == nil
end

function M.is_object(v)
  return type(v) == "table" and not M.is_array(v)
end

function M.is_nan(v)
  return type(v) == "number" and v ~= v
end

function M.is_integer(v)
  if math.type(v) == "integer" then return true end
  return type(v) == "number" and v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge
end

local EXACT = 2 ^ 53

--- number(v) -> v as a float: every computation runs in IEEE 754 doubles so
-- that integer wrap-around (2^62 * 4) can never happen.
function M.float(v)
  return v + 0.0
end

--- out(v) -> v with whole floats turned back into integers, so that 6.0
-- encodes as 6 and compares equal to the integers a client sent.
function M.out(v)
  if math.type(v) == "float" and v == math.floor(v) and v > -EXACT and v < EXACT then
    return math.tointeger(v)
  end
  return v
end

function M.err(code, message, status)
  return { code = code, message = message, status = status or 400 }
end

--- fail(code, message) -> nil, err: the way an impl reports an exception.
function M.fail(code, message)
  return nil, M.err(code, message)
end

--- copy(t) -> a new array with t's values (and labels, if any).
function M.copy_array(t)
  local c = {}
  for i = 1, #t do c[i] = t[i] end
  local labels = LABELS[t]
  if labels then
    local l = {}
    for i = 1, #labels do l[i] = labels[i] end
    return M.labeled(c, l)
  end
  return M.array(c)
end

-- Shortest text that reads back as the same double: 0.1 -> "0.1", 1.0 -> "1".
function M.number_text(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v then return "NaN" end
  if v == math.huge then return "Infinity" end
  if v == -math.huge then return "-Infinity" end
  if v == math.floor(v) and v > -EXACT and v < EXACT then
    return string.format("%d", math.tointeger(v))
  end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

---------------------------------------------------------------------------
-- Case folding. Lua's string.lower only knows ASCII; openEO compares "Ä" and
-- "ä" as equal when case_sensitive is false. This covers Latin-1, Latin
-- Extended-A, Greek and Cyrillic, which is where real band names and texts
-- live; other scripts compare exactly.

local function lower_cp(c)
  if c < 0x80 then
    if c >= 0x41 and c <= 0x5A then return c + 32 end
    return c
  end
  if c >= 0xC0 and c <= 0xDE and c ~= 0xD7 then return c + 32 end
  if c == 0x178 then return 0xFF end
  if c >= 0x100 and c <= 0x137 and c ~= 0x130 then return c | 1 end
  if c == 0x130 then return 0x69 end
  if c >= 0x139 and c <= 0x148 and c % 2 == 1 then return c + 1 end
  if c >= 0x14A and c <= 0x177 and c % 2 == 0 then return c + 1 end
  if c >= 0x179 and c <= 0x17E and c % 2 == 1 then return c + 1 end
  if c >= 0x391 and c <= 0x3AB and c ~= 0x3A2 then return c + 32 end
  if c == 0x386 then return 0x3AC end
  if c >= 0x388 and c <= 0x38A then return c + 37 end
  if c == 0x38C then return 0x3CC end
  if c == 0x38E or c == 0x38F then return c + 63 end
  if c >= 0x410 and c <= 0x42F then return c + 32 end
  if c >= 0x400 and c <= 0x40F then return c + 80 end
  if (c >= 0x460 and c <= 0x481) or (c >= 0x48A and c <= 0x4BF) then return c | 1 end
  return c
end

function M.casefold(s)
  if not s:find("[\128-\255]") then return s:lower() end
  if not utf8.len(s) then return s:lower() end -- not UTF-8: ASCII rules only
  local out = {}
  for _, c in utf8.codes(s) do out[#out + 1] = utf8.char(lower_cp(c)) end
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Equality as eq() defines it: strict types (1 ~= "1", 0 ~= false), numbers
-- by value (1 == 1.0), IEEE NaN, an optional delta for numbers and optional
-- case-insensitivity for strings. Returns true, false or null.

function M.equals(x, y, delta, case_sensitive)
  if M.is_null(x) or M.is_null(y) then return NULL end
  local tx, ty = type(x), type(y)
  if tx ~= ty then return false end
  if tx == "number" then
    if not M.is_null(delta) then return math.abs(x - y) <= delta end
    return x == y
  end
  if tx == "string" then
    if case_sensitive == false then return M.casefold(x) == M.casefold(y) end
    return x == y
  end
  if tx == "boolean" then return x == y end
  return false -- arrays and objects are never equal to anything
end

---------------------------------------------------------------------------
-- Dates: RFC 3339 date-times ("2020-01-01T12:00:00.5+02:00"), dates
-- ("2020-01-01", UTC midnight) and times ("12:00:00", UTC). Arithmetic is on
-- the proleptic Gregorian calendar with plain integers (no os.time, whose
-- answer depends on the host's time zone).

-- Days since 1970-01-01 for a civil date (H. Hinnant's algorithm).
function M.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

function M.civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

function M.is_leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

function M.days_in_month(y, m)
  if m == 2 and M.is_leap(y) then return 29 end
  return MONTH_DAYS[m]
end

--- parse_temporal(s) -> t | nil. t = {kind = "date-time"|"date"|"time",
-- y, m, d, H, M, S, ms (integers), offset (minutes east of UTC),
-- zone (the offset text as written, e.g. "Z" or "+02:00")}.
function M.parse_temporal(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if y then
    y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
    if mo < 1 or mo > 12 or d < 1 or d > M.days_in_month(y, mo) then return nil end
    return { kind = "date", y = y, m = mo, d = d, H = 0, M = 0, S = 0, ms = 0, offset = 0, zone = "Z" }
  end
  local H, Mi, S = s:match("^(%d%d):(%d%d):(%d%d)$")
  if H then
    H, Mi, S = tonumber(H), tonumber(Mi), tonumber(S)
    if H > 23 or Mi > 59 or S > 60 then return nil end
    return { kind = "time", y = 1970, m = 1, d = 1, H = H, M = Mi, S = S, ms = 0, offset = 0, zone = "Z" }
  end
  local frac, zone
  y, mo, d, H, Mi, S, frac, zone =
    s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(%.?%d*)([Zz+%-]?[%d:]*)$")
  if not y then return nil end
  y, mo, d, H, Mi, S = tonumber(y), tonumber(mo), tonumber(d), tonumber(H), tonumber(Mi), tonumber(S)
  if mo < 1 or mo > 12 or d < 1 or d > M.days_in_month(y, mo) then return nil end
  if H > 23 or Mi > 59 or S > 60 then return nil end
  local ms = 0
  if frac ~= "" then
    if frac == "." then return nil end
    ms = math.floor(tonumber("0" .. frac) * 1000 + 0.5)
    if ms >= 1000 then ms = 999 end
  end
  local offset
  if zone == "Z" or zone == "z" then
    offset = 0
  else
    local sign, oh, om = zone:match("^([+%-])(%d%d):(%d%d)$")
    if not sign then return nil end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return nil end
    offset = (oh * 60 + om) * (sign == "-" and -1 or 1)
  end
  return { kind = "date-time", y = y, m = mo, d = d, H = H, M = Mi, S = S, ms = ms, offset = offset, zone = zone }
end

--- epoch_ms(t) -> milliseconds since 1970-01-01T00:00:00Z of a parsed value
-- (a leap second 23:59:60 counts as the first instant of the next minute).
function M.epoch_ms(t)
  local days = M.days_from_civil(t.y, t.m, t.d)
  local secs = days * 86400 + t.H * 3600 + t.M * 60 + t.S - t.offset * 60
  return secs * 1000 + t.ms
end

--- local_from_ms(ms, t) -> a copy of t (kind, zone kept) set to the instant
-- ms, expressed in t's own offset.
function M.local_from_ms(ms, t)
  local lms = ms + t.offset * 60000
  local days = lms // 86400000
  local rest = lms - days * 86400000
  local y, m, d = M.civil_from_days(days)
  return {
    kind = t.kind, zone = t.zone, offset = t.offset, y = y, m = m, d = d,
    H = rest // 3600000, M = rest // 60000 % 60, S = rest // 1000 % 60, ms = rest % 1000,
  }
end

function M.format_temporal(t)
  if t.kind == "date" then return string.format("%04d-%02d-%02d", t.y, t.m, t.d) end
  local s = string.format("%04d-%02d-%02dT%02d:%02d:%02d", t.y, t.m, t.d, t.H, t.M, t.S)
  if t.ms ~= 0 then s = s .. string.format(".%03d", t.ms) end
  return s .. t.zone
end

return M
