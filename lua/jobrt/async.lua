-- Coroutines on the loop. `spawn` runs a function as a coroutine bounded in
-- running time and memory; `wait` suspends the running coroutine until a
-- callback wakes it. Both build on jobrt.runtime's primitives (in C, shared
-- with the C bindings): every resumption goes through runtime.resume_task,
-- which keeps each coroutine's bounds across its waits.
local runtime = require("jobrt.runtime")

local M = {}

-- resume(co, ...): continue a coroutine started by spawn (or any other).
M.resume = runtime.resume_task

-- spawn(fn, opts, ...): opts.deadline (CPU seconds, 0 = none), opts.memory
-- (bytes the coroutine may grow the heap by, 0 = none), opts.on_done(...),
-- opts.on_error(err, kind, traceback) with kind "deadline", "memory" or
-- "error", opts.log (a runtime.log_context() whose fields the lines logged
-- while the coroutine runs carry). Returns the coroutine.
function M.spawn(fn, opts, ...)
  opts = opts or {}
  local co = coroutine.create(fn)
  runtime.bound(co, opts.deadline or 0, opts.memory or 0, opts.on_done, opts.on_error, opts.log)
  M.resume(co, ...)
  return co
end

-- wait(register): register(wake) arranges for wake(...) to be called once,
-- now or later; wait returns wake's arguments. Later calls of wake are
-- ignored, so a timeout and an event may race safely.
M.wait = runtime.wait

-- call(fn, opts, ...): run fn to completion now, bounded like spawn, for
-- code that must not wait (loading a plugin, a policy decision at
-- start-up). Returns true, results... or false, err, kind, traceback.
function M.call(fn, opts, ...)
  opts = opts or {}
  local co = coroutine.create(fn)
  local r = table.pack(runtime.resume(co, opts.deadline or 0, opts.memory or 0, ...))
  if r[1] == "ok" then return true, table.unpack(r, 4, r.n) end
  if r[1] == "yield" then return false, "it waited, which is not allowed here", "error" end
  return false, r[4], r[5], r[6]
end

-- now() -> seconds on a monotonic clock (a float), for measuring waits.
function M.now()
  return runtime.hrtime() / 1e9
end

-- sleep(seconds) from inside a coroutine.
function M.sleep(seconds)
  local uv = require("luv")
  return M.wait(function(wake)
    local t = uv.new_timer()
    t:start(math.floor(seconds * 1000 + 0.5), 0, function()
      t:close()
      wake()
    end)
  end)
end

return M
