-- Watcher fan-out of jobrt.core: N watchers (coroutines, as the native
-- /events and the Kuscia watch run them) wait on core.watch(); each round
-- first makes Q commits without an event (log lines, as running tasks
-- write them), then commits B events, and times how long until every
-- watcher has seen them.
-- `jobrt lua bench/core_watchers.lua [N] [ROUNDS] [B] [Q]`; prints
-- "WATCH n=.. rounds=.. batch=.. quiet=.. total_ms=.. round_p50_ms=.. round_max_ms=.."
local core = require("jobrt.core")
local uv = require("luv")

local N = tonumber(arg and arg[1]) or 500
local ROUNDS = tonumber(arg and arg[2]) or 200
local B = tonumber(arg and arg[3]) or 5
local Q = tonumber(arg and arg[4]) or 0

local dir = os.tmpname()
os.remove(dir)
assert(core.open({ data_dir = dir, node = { cpu = 1000, max_tasks = 1 } }))
assert(core.submit({ id = "logger" }))
assert(core.durable())

local seen, want = 0, 0 -- events seen by all watchers together, and expected
local alive = 0
for _ = 1, N do
  local w = core.watch()
  alive = alive + 1
  coroutine.wrap(function()
    while true do
      local ev, err = w:next(10000)
      if err == "stopping" then break end
      if ev then seen = seen + 1 end
    end
    w:close()
    alive = alive - 1
  end)()
end

local function hr_ms() return uv.hrtime() / 1e6 end
local times = {}
local t0 = hr_ms()
for r = 1, ROUNDS do
  local start = hr_ms()
  for q = 1, Q do
    assert(core.log("logger", { message = "line " .. q }))
    assert(core.durable()) -- outside a coroutine: commits now
  end
  for b = 1, B do
    assert(core.submit({ id = string.format("r%d-%d", r, b) }))
  end
  want = want + N * B
  local guard = 0
  while seen < want do
    uv.run("once")
    guard = guard + 1
    if guard > 1e6 then error("watchers did not see every event") end
  end
  times[#times + 1] = hr_ms() - start
end
local total = hr_ms() - t0
table.sort(times)
print(string.format("WATCH n=%d rounds=%d batch=%d quiet=%d total_ms=%.1f round_p50_ms=%.3f round_max_ms=%.3f",
  N, ROUNDS, B, Q, total, times[(#times + 1) // 2], times[#times]))
core.stop_watchers()
for _ = 1, 100 do
  if alive == 0 then break end
  uv.run("nowait")
end
core.close()
os.execute("rm -rf '" .. dir .. "'")
