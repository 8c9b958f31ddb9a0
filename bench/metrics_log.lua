-- For bench/metrics.sh: the CPU time of one access line, written as text
-- and as JSON (jobrt.access, the same call the request pipeline makes),
-- standard error sent to /dev/null by the caller. Prints
-- "LOGLINE <text us> <json us>". N lines each (arg[1], default 200000).
local access = require("jobrt.access")
local runtime = require("jobrt.runtime")

local n = tonumber(arg[1]) or 200000
local req = {
  id = "1f2e-3a", method = "POST", target = "/jobrt/v1/jobs?limit=2&token=secret", peer = "127.0.0.1:50412",
  log = runtime.log_context("1f2e-3a", "native"),
}
req.log:set("principal", "bench")
req.log:set("job", "01a240ca-5458-7102-b279-062ce6c83605")
local res = { code = 201 }

local function per_line(format)
  runtime.set_log_format(format)
  local t0 = os.clock()
  for _ = 1, n do access.log(req, res, runtime.hrtime()) end
  return (os.clock() - t0) / n * 1e6
end

-- A first pass warms both paths up.
per_line("text")
per_line("json")
io.stdout:write(string.format("LOGLINE %.2f %.2f\n", per_line("text"), per_line("json")))
