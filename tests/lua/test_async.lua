-- Bounded coroutines: deadlines, memory caps, waits and wake-ups.
local async = require("jobrt.async")

return {
  { "call returns the function's results", function(t)
    t.eq({ async.call(function(a, b) return a + b, "x" end, {}, 2, 3) }, { true, 5, "x" })
  end },

  { "a busy loop is stopped at its deadline even inside pcall", function(t)
    local start = os.clock()
    local ok, err, kind = async.call(function()
      while true do pcall(function() while true do end end) end
    end, { deadline = 0.1 })
    t.eq(ok, false)
    t.eq(kind, "deadline")
    t.match(err, "time limit exceeded")
    t.ok(os.clock() - start < 1, "stopped promptly")
  end },

  { "a busy loop in a coroutine the call made itself is stopped too", function(t)
    local start = os.clock()
    local ok, err, kind = async.call(function()
      local spin = coroutine.wrap(function() while true do end end)
      spin()
    end, { deadline = 0.1 })
    t.eq({ ok, kind }, { false, "deadline" })
    t.match(err, "time limit exceeded")
    ok, err, kind = async.call(function()
      local co = coroutine.create(function()
        coroutine.yield(1)
        local inner = coroutine.create(function() while true do end end)
        -- A resume that reports the kill as its result does not end it.
        local r = { coroutine.resume(inner) }
        while true do end
      end)
      t.eq({ coroutine.resume(co) }, { true, 1 })
      coroutine.resume(co)
      return "not reached"
    end, { deadline = 0.1 })
    t.eq({ ok, kind }, { false, "deadline" })
    t.ok(os.clock() - start < 2, "stopped promptly")
  end },

  { "coroutine.resume and wrap behave as Lua's own", function(t)
    local co = coroutine.create(function(a) local b = coroutine.yield(a + 1); return b * 2 end)
    t.eq({ coroutine.resume(co, 1) }, { true, 2 })
    t.eq({ coroutine.resume(co, 5) }, { true, 10 })
    t.eq({ coroutine.resume(co) }, { false, "cannot resume dead coroutine" })
    t.eq(coroutine.status(co), "dead")
    local ok, err = pcall(coroutine.resume, 42)
    t.eq(ok, false)
    t.match(err, "coroutine expected")
    local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
    t.eq({ gen(), gen(), gen() }, { 1, 2, 3 })
    local bad = coroutine.wrap(function() error("inside") end)
    ok, err = pcall(bad)
    t.eq(ok, false)
    t.match(err, "inside")
    local tbl_err = coroutine.wrap(function() error({ code = 7 }) end)
    ok, err = pcall(tbl_err)
    t.eq({ ok, type(err) == "table" and err.code }, { false, 7 })
    -- Resuming itself, and nesting past the chain's depth, are refused.
    local selfish
    selfish = coroutine.create(function() return coroutine.resume(selfish) end)
    t.eq({ coroutine.resume(selfish) }, { true, false, "cannot resume non-suspended coroutine" })
    local function nest(n)
      if n == 0 then return "bottom" end
      local r = { coroutine.resume(coroutine.create(nest), n - 1) }
      if not r[1] then return r[2] end
      return r[2]
    end
    t.eq(nest(10), "bottom")
    t.eq(nest(200), "coroutines nested too deeply")
  end },

  { "an allocation past the memory cap fails the call alone", function(t)
    local ok, err, kind = async.call(function()
      local parts = {}
      for i = 1, 1e8 do parts[i] = string.rep("x", 100) .. i end
    end, { memory = 4 * 1024 * 1024 })
    t.eq(ok, false)
    t.eq(kind, "memory")
    t.match(err, "not enough memory")
    -- The state is usable afterwards.
    t.eq(#string.rep("y", 1024 * 1024), 1024 * 1024)
  end },

  { "an inner bound never extends the outer one", function(t)
    local ok, inner_ok, _, kind = async.call(function()
      return async.call(function() while true do end end, { deadline = 100 })
    end, { deadline = 0.05 })
    -- The inner call hits the outer deadline and reports it.
    t.eq(ok, true)
    t.eq(inner_ok, false)
    t.eq(kind, "deadline")
  end },

  { "spawn runs until it waits and resumes when woken", function(t)
    local log = {}
    local wake_later
    async.spawn(function()
      log[#log + 1] = "start"
      local v = async.wait(function(wake) wake_later = wake end)
      log[#log + 1] = "woken " .. v
    end, { deadline = 1 })
    t.eq(log, { "start" })
    wake_later("now")
    wake_later("twice") -- ignored
    t.eq(log, { "start", "woken now" })
  end },

  { "a wake during registration does not yield", function(t)
    local got
    async.spawn(function()
      got = async.wait(function(wake) wake(42) end)
    end)
    t.eq(got, 42)
  end },

  { "the CPU budget is shared across waits", function(t)
    local uv = require("luv")
    local kind, second_started, second_ran
    local wake_later
    async.spawn(function()
      local start = uv.hrtime()
      while uv.hrtime() - start < 0.2e9 do end -- spend a fifth of the budget
      async.wait(function(wake) wake_later = wake end)
      second_started = uv.hrtime()
      while true do end
    end, { deadline = 1, on_error = function(_, k)
      kind = k
      if second_started then second_ran = (uv.hrtime() - second_started) / 1e9 end
    end })
    t.ok(wake_later, "the first part ran within its budget and waited")
    if wake_later then wake_later() end
    t.eq(kind, "deadline")
    -- The second part got what was left, not a fresh second.
    t.ok(second_ran and second_ran < 0.95, "second part ran " .. tostring(second_ran) .. " s")
  end },

  { "per_wake: a streaming task's deadline holds for each wake, not their sum", function(t)
    local uv = require("luv")
    local runtime = require("jobrt.runtime")
    local wakes, failed, wake = 0, nil, nil
    local co = async.spawn(function()
      t.ok(runtime.per_wake(coroutine.running()), "a bounded task")
      for _ = 1, 5 do
        local start = uv.hrtime()
        while uv.hrtime() - start < 0.03e9 do end -- most of the budget, each time
        wakes = wakes + 1
        async.wait(function(w) wake = w end)
      end
      while true do end
    end, { deadline = 0.05, on_error = function(_, k) failed = k end })
    t.ok(co)
    for _ = 1, 4 do wake() end
    t.eq({ wakes, failed }, { 5, nil }, "five wakes of 30 ms under a 50 ms deadline")
    wake()
    t.eq(failed, "deadline", "a wake that runs away is still stopped")
    t.eq(runtime.per_wake(coroutine.create(function() end)), false)
  end },

  { "sleep waits on the loop", function(t)
    local uv = require("luv")
    local before = uv.now()
    local done = false
    async.spawn(function()
      async.sleep(0.03)
      done = true
    end)
    t.eq(done, false)
    t.sleep(80)
    t.eq(done, true)
    t.ok(uv.now() - before >= 30)
  end },

  { "an error in a luv callback reaches the handler jobrt.callbacks sets, with its traceback", function(t)
    local uv, callbacks = require("luv"), require("jobrt.callbacks")
    local got
    local previous = callbacks.on_error(function(msg) got = msg end)
    t.cleanup = function() callbacks.on_error(previous) end
    t.eq(type(previous), "function", "jobrt lua sets one for the script")
    local timer = uv.new_timer()
    timer:start(1, 0, function() error("raised in a timer") end)
    for _ = 1, 100 do
      if got then break end
      t.sleep(5)
    end
    timer:close()
    t.match(got, "test_async%.lua:%d+: raised in a timer")
    t.match(got, "stack traceback:")
  end },

  { "without a handler (as serve runs) a luv callback error is logged and the loop goes on", function(t)
    local uv, callbacks = require("luv"), require("jobrt.callbacks")
    local previous = callbacks.on_error(nil)
    t.cleanup = function() callbacks.on_error(previous) end
    local failing, later, fired = uv.new_timer(), uv.new_timer(), 0
    failing:start(1, 0, function() fired = fired + 1 error("raised in a daemon's timer (this error is expected)") end)
    later:start(30, 0, function() fired = fired + 100 end)
    for _ = 1, 100 do
      if fired == 101 then break end
      t.sleep(5)
    end
    failing:close()
    later:close()
    t.eq(fired, 101, "the failing timer fired and a later one ran")
    t.eq(callbacks.on_error(previous), nil)
  end },
}
