-- Coroutines on the loop. `spawn` runs a function as a coroutine bounded in
-- running time and memory (jobrt.runtime.resume enforces both); `wait` suspends
-- the running coroutine until a callback wakes it. Every resumption goes
-- through `resume`, so bounds hold across waits.
local runtime = require("jobrt.runtime")

local M = {}

local tasks = setmetatable({}, { __mode = "k" }) -- coroutine -> bounds

local function finish(co, b, status, ...)
  tasks[co] = nil
  if status == "ok" then
    if b.on_done then b.on_done(...) end
  else
    local err, kind, trace = ...
    if b.on_error then
      b.on_error(err, kind, trace)
    else
      runtime.log("error", "coroutine failed: " .. tostring(trace or err))
    end
  end
end

local function step(co, b, status, elapsed, grown, ...)
  b.cpu = b.cpu + elapsed
  b.grown = b.grown + grown
  if status ~= "yield" then finish(co, b, status, ...) end
end

-- resume(co, ...): continue a coroutine started by spawn (or any other).
function M.resume(co, ...)
  local b = tasks[co]
  if not b then
    local ok, err = coroutine.resume(co, ...)
    if not ok then runtime.log("error", "coroutine failed: " .. tostring(err)) end
    return
  end
  local seconds = 0
  if b.deadline > 0 then seconds = math.max(b.deadline - b.cpu, 1e-6) end
  local bytes = 0
  if b.memory > 0 then bytes = math.max(b.memory - b.grown, 1) end
  step(co, b, runtime.resume(co, seconds, bytes, ...))
end

-- spawn(fn, opts, ...): opts.deadline (CPU seconds, 0 = none), opts.memory
-- (bytes the coroutine may grow the heap by, 0 = none), opts.on_done(...),
-- opts.on_error(err, kind, traceback) with kind "deadline", "memory" or
-- "error". Returns the coroutine.
function M.spawn(fn, opts, ...)
  opts = opts or {}
  local co = coroutine.create(fn)
  tasks[co] = {
    deadline = opts.deadline or 0,
    memory = opts.memory or 0,
    cpu = 0,
    grown = 0,
    on_done = opts.on_done,
    on_error = opts.on_error,
  }
  M.resume(co, ...)
  return co
end

-- wait(register): register(wake) arranges for wake(...) to be called once,
-- now or later; wait returns wake's arguments. Later calls of wake are
-- ignored, so a timeout and an event may race safely.
function M.wait(register)
  local co, main = coroutine.running()
  if main then error("async.wait called outside a coroutine", 2) end
  local state, early = "waiting", nil
  register(function(...)
    if state == "done" then return end
    if state == "waiting" and coroutine.running() == co then
      state, early = "done", table.pack(...)
      return
    end
    state = "done"
    M.resume(co, ...)
  end)
  if early then return table.unpack(early, 1, early.n) end
  state = "suspended"
  return coroutine.yield()
end

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
