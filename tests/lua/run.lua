-- Runs the Lua unit tests inside the jobrt binary: `jobrt lua tests/lua/run.lua
-- [FILE...]`. A test file returns an ordered list of {name, function(t)}; each
-- test runs in its own coroutine so it may wait on the loop (t.sleep), bounded
-- by a per-test time limit. Prints "ok - " / "not ok - " lines for tests/run.
local uv = require("luv")

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path

local function fmt(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function new_t(name)
  local t = { failures = {} }
  local function fail(msg)
    local info = debug.getinfo(3, "Sl")
    t.failures[#t.failures + 1] = string.format("%s:%d: %s", info.short_src, info.currentline, msg)
  end
  function t.ok(v, msg)
    if not v then fail("expected truthy: " .. (msg or fmt(v))) end
    return v
  end
  function t.eq(a, b, msg)
    if not deep_equal(a, b) then
      local ok, json = pcall(require, "cjson")
      local show = function(x)
        if type(x) == "table" and ok then
          local s, r = pcall(json.encode, x)
          if s then return r end
        end
        return fmt(x)
      end
      fail(string.format("%s%s ~= %s", msg and (msg .. ": ") or "", show(a), show(b)))
    end
  end
  function t.match(s, pattern, msg)
    if type(s) ~= "string" or not s:find(pattern) then
      fail(string.format("%s%s does not match %q", msg and (msg .. ": ") or "", fmt(s), pattern))
    end
  end
  -- t.err(fn, pattern): fn must raise an error whose message matches.
  function t.err(fn, pattern)
    local ok, e = pcall(fn)
    if ok then
      fail("expected an error matching " .. fmt(pattern))
    elseif pattern and not tostring(e):find(pattern) then
      fail(string.format("error %s does not match %q", fmt(tostring(e)), pattern))
    end
  end
  -- t.sleep(ms): let the loop run for a while from inside the test.
  function t.sleep(ms)
    local co = coroutine.running()
    local timer = uv.new_timer()
    timer:start(ms, 0, function()
      timer:close()
      coroutine.resume(co)
    end)
    coroutine.yield()
  end
  t.name = name
  return t
end

local files = { ... }
if #files == 0 then
  local p = io.popen("ls " .. here .. "test_*.lua 2>/dev/null")
  for line in p:lines() do files[#files + 1] = line end
  p:close()
end

local passed, failed = 0, 0
local TEST_LIMIT_MS = 20000
for _, file in ipairs(files) do
  local chunk, lerr = loadfile(file)
  local tests = chunk and select(2, pcall(chunk))
  if type(tests) ~= "table" then
    failed = failed + 1
    print("not ok - " .. file .. ": load")
    io.stderr:write(tostring(lerr or tests), "\n")
  else
    for _, case in ipairs(tests) do
      local name, fn = case[1], case[2]
      local t = new_t(name)
      local done, err = false, nil
      local co = coroutine.create(function()
        local ok, e = xpcall(fn, debug.traceback, t)
        if not ok then err = e end
        done = true
      end)
      local ok, e = coroutine.resume(co)
      if not ok then err, done = e, true end
      local start = uv.now()
      while not done and uv.now() - start < TEST_LIMIT_MS do
        uv.run("once")
        uv.update_time()
      end
      if not done then err = "timed out after " .. TEST_LIMIT_MS .. " ms" end
      if err then t.failures[#t.failures + 1] = tostring(err) end
      local short = file:match("[^/]+$")
      if #t.failures == 0 then
        passed = passed + 1
        print("ok - " .. short .. ": " .. name)
      else
        failed = failed + 1
        print("not ok - " .. short .. ": " .. name)
        for _, f in ipairs(t.failures) do io.stderr:write("    ", f, "\n") end
      end
      if t.cleanup then pcall(t.cleanup) end
    end
  end
end
io.stderr:write(string.format("lua: %d passed, %d failed\n", passed, failed))
os.exit(failed == 0 and 0 or 1)
