-- jobrt.units: sizes, cpu and durations, and every way to get them wrong.
local units = require("jobrt.units")

local function check_all(t, fn, cases)
  for _, case in ipairs(cases) do
    local v, err = fn(case[1])
    t.eq(v, case[2], "value of " .. tostring(case[1]))
    if case[2] ~= nil then
      t.eq(math.type(v), math.type(case[2]), "type of " .. tostring(case[1]))
    else
      t.eq(err, case[3], "error of " .. tostring(case[1]))
    end
  end
end

local SIZE_UNITS = "(use B, k, M, G, T, P, Ki, Mi, Gi, Ti or Pi)"

return {
  { "bytes: numbers and units", function(t)
    check_all(t, units.bytes, {
      { 0, 0 }, { 512, 512 }, { 1e3, 1000 }, { "512", 512 }, { "512B", 512 },
      { "64k", 64000 }, { "64K", 64000 }, { "64kB", 64000 }, { "64KB", 64000 },
      { "64KiB", 65536 }, { "64Ki", 65536 }, { "10MB", 10000000 }, { "10M", 10000000 },
      { "4GiB", 4294967296 }, { "1.5G", 1500000000 }, { "1.5KiB", 1536 },
      { "2T", 2000000000000 }, { "1TiB", 1 << 40 }, { "1PiB", 1 << 50 },
      { " 64 MiB ", 64 << 20 }, { ".5k", 500 }, { "1.250k", 1250 },
      { "9223372036854775807", math.maxinteger },
    })
  end },

  { "bytes: errors quote the text", function(t)
    check_all(t, units.bytes, {
      { "", nil, 'invalid size "": empty' },
      { "  ", nil, 'invalid size "  ": empty' },
      { "-5", nil, 'invalid size "-5": must not be negative' },
      { -5, nil, "invalid size -5: must not be negative" },
      { "abc", nil, 'invalid size "abc": expected a number with an optional unit, e.g. "64MiB"' },
      { "4 GiB x", nil, 'invalid size "4 GiB x": expected a number with an optional unit, e.g. "64MiB"' },
      { "1.", nil, 'invalid size "1.": expected a number with an optional unit, e.g. "64MiB"' },
      { "10XB", nil, 'invalid size "10XB": unknown unit "XB" ' .. SIZE_UNITS },
      { "10mb", nil, 'invalid size "10mb": unknown unit "mb" ' .. SIZE_UNITS },
      { "0.5B", nil, 'invalid size "0.5B": not a whole number of bytes' },
      { "1.0001k", nil, 'invalid size "1.0001k": not a whole number of bytes' },
      { 1.5, nil, "invalid size 1.5: not a whole number of bytes" },
      { "9223372036854775808", nil, 'invalid size "9223372036854775808": too large' },
      { "99999999999999999999", nil, 'invalid size "99999999999999999999": too large' },
      { "8192PiB", nil, 'invalid size "8192PiB": too large' },
      { 2 ^ 63, nil, "invalid size 9.2233720368548e+18: too large" },
      { math.huge, nil, "invalid size inf: not a finite number" },
      { true, nil, 'expected a size such as 4096 or "64MiB", got boolean' },
      { {}, nil, 'expected a size such as 4096 or "64MiB", got table' },
    })
    local _, err = units.bytes(0 / 0)
    t.match(err, "not a finite number$")
    _, err = units.bytes(string.rep("9", 100) .. "x")
    t.eq(err, 'invalid size "' .. string.rep("9", 61) .. '...": unknown unit "x" ' .. SIZE_UNITS)
    _, err = units.bytes('4"\n')
    t.eq(err, 'invalid size "4\\034\\010": expected a number with an optional unit, e.g. "64MiB"')
  end },

  { "cpu: cores and millicores", function(t)
    check_all(t, units.cpu, {
      { 2, 2000 }, { 0.5, 500 }, { 0.1, 100 }, { 0.3, 300 }, { 0, 0 }, { 1.25, 1250 },
      { "500m", 500 }, { "1.5", 1500 }, { "2", 2000 }, { " 250m ", 250 }, { "0.001", 1 },
    })
  end },

  { "cpu: errors", function(t)
    check_all(t, units.cpu, {
      { "", nil, 'invalid cpu "": empty' },
      { "-1", nil, 'invalid cpu "-1": must not be negative' },
      { -0.5, nil, "invalid cpu -0.5: must not be negative" },
      { "abc", nil, 'invalid cpu "abc": expected cores ("2", "0.5") or millicores ("500m")' },
      { "2 cores", nil, 'invalid cpu "2 cores": expected cores ("2", "0.5") or millicores ("500m")' },
      { "500M", nil, 'invalid cpu "500M": expected cores ("2", "0.5") or millicores ("500m")' },
      { "0.0005", nil, 'invalid cpu "0.0005": finer than a millicore (1m)' },
      { "0.5m", nil, 'invalid cpu "0.5m": finer than a millicore (1m)' },
      { 0.0001, nil, "invalid cpu 0.0001: finer than a millicore (1m)" },
      { "99999999999999999999", nil, 'invalid cpu "99999999999999999999": too large' },
      { 1e300, nil, "invalid cpu 1e+300: too large" },
      { false, nil, 'expected cores (2, 0.5) or millicores ("500m"), got boolean' },
    })
  end },

  { "duration: seconds and parts", function(t)
    check_all(t, units.duration, {
      { 30, 30 }, { 0.5, 0.5 }, { "30", 30 }, { "30s", 30 }, { "5m", 300 }, { "1h", 3600 },
      { "1h30m", 5400 }, { "1h 30m", 5400 }, { "250ms", 0.25 }, { "2d", 172800 },
      { "1.5h", 5400 }, { "1m30s500ms", 90.5 }, { "0s", 0 },
    })
  end },

  { "duration: errors", function(t)
    check_all(t, units.duration, {
      { "", nil, 'invalid duration "": empty' },
      { "-5s", nil, 'invalid duration "-5s": must not be negative' },
      { -1, nil, "invalid duration -1: must not be negative" },
      { "abc", nil, 'invalid duration "abc": expected seconds or parts such as "30s", "5m", "1h30m", "250ms"' },
      { "5x", nil, 'invalid duration "5x": unknown unit "x" (use ms, s, m, h or d)' },
      { "1h30", nil, 'invalid duration "1h30": every part needs a unit (ms, s, m, h or d)' },
      { "1m1m", nil, 'invalid duration "1m1m": unit "m" given twice' },
      { "1e20d", nil, 'invalid duration "1e20d": unknown unit "e" (use ms, s, m, h or d)' },
      { "99999999999999999999d", nil, 'invalid duration "99999999999999999999d": too large' },
      { math.huge, nil, "invalid duration inf: not a finite number" },
      { {}, nil, 'expected seconds or a duration such as "30s", got table' },
    })
  end },
}
