-- Bacalhau's resource strings (Spec.Resources: CPU "500m", Memory "1Gb",
-- GPU "1") read as a Bacalhau node reads them, and written back for a job
-- echo. Each reader returns an integer or nil and a clause saying why not.
local lpeg = require("lpeg")
local units = require("jobrt.units")

local M = {}

-- Sizes: a Bacalhau node lower-cases the text, turns every "i" into "b"
-- and hands it to a parser whose k, kb, m, mb, g, gb, ... are all powers of
-- 1024. So no suffix is decimal here either: "1Gb", "1GB", "1Gi", "1GiB"
-- and "1g" are each 2^30 bytes, "1000000" is a million bytes. ("MiB" would
-- fail on a Bacalhau node; it is accepted here, with the same meaning.)
local POWER = { [""] = 0, k = 1, m = 2, g = 3, t = 4, p = 5 }

local digits = lpeg.R("09") ^ 1
local size_grammar = lpeg.C(digits * (lpeg.P(".") * digits) ^ -1)
  * lpeg.C(lpeg.S("kmgtp") ^ -1) * (lpeg.P("ib") + lpeg.P("i") + lpeg.P("b")) ^ -1 * -1

--- units.bytes(s) -> bytes | nil, reason
function M.bytes(s)
  local text = s:lower():gsub("%s", "")
  local num, unit = size_grammar:match(text)
  if not num then
    return nil, 'is not a size: write a whole number of bytes or one with a unit, '
      .. 'such as "1000000", "512Mb" or "1Gi" (every unit counts in 1024s)'
  end
  local n, err = units.bytes(num .. (POWER[unit] == 0 and "" or (unit:upper() .. "i")))
  if not n then return nil, "is " .. (err:match(": (.*)$") or err) end
  return n
end

--- units.cpu(s) -> millicores | nil, reason ("500m", "0.5", "2")
function M.cpu(s)
  local n, err = units.cpu(s:lower())
  if not n then return nil, "is not a CPU amount: " .. (err:match(": (.*)$") or err)
    .. ' (write cores such as "2" or "0.5", or millicores such as "500m")' end
  return n
end

--- units.gpu(s) -> count | nil, reason (a decimal whole number, "1")
function M.gpu(s)
  local t = s:match("^%s*(%d+)%s*$")
  local n = t and #t <= 18 and math.tointeger(tonumber(t))
  if not n then return nil, 'is not a GPU count: write a whole number such as "1"' end
  return n
end

--- units.cpu_text(millicores) -> "2" for whole cores, else "500m"
function M.cpu_text(m)
  if m % 1000 == 0 then return tostring(m // 1000) end
  return m .. "m"
end

--- units.bytes_text(bytes) -> "1Gi", "512Mi" when a power of 1024 divides
-- it, else the plain number of bytes
function M.bytes_text(n)
  for _, u in ipairs({ { "Pi", 1 << 50 }, { "Ti", 1 << 40 }, { "Gi", 1 << 30 }, { "Mi", 1 << 20 },
                       { "Ki", 1 << 10 } }) do
    if n >= u[2] and n % u[2] == 0 then return (n // u[2]) .. u[1] end
  end
  return tostring(n)
end

return M
