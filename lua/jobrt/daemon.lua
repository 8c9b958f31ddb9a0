-- The serving daemon: opens the job store, mounts the surfaces, listens,
-- and shuts down gracefully on SIGTERM/SIGINT (stop accepting, finish the
-- requests in flight, leave running tasks running for the next daemon or,
-- with shutdown.tasks = stop, stop them first, flush the store, exit 0).
local http = require("jobrt.http")
local runtime = require("jobrt.runtime")
local server = require("jobrt.server")
local uv = require("luv")

local M = {}

-- The core holds DATA/daemon.lock (flock) while it is open, with the
-- daemon's pid in it: `jobrt reload` finds the daemon there.
local LOCK_FILE = "daemon.lock"

--- daemon.signal(data_dir, signame, out, err) -> exit status: sends the
-- signal to the jobrt daemon whose pid DATA/daemon.lock holds, after
-- checking that this process is a jobrt serving.
function M.signal(dir, signame, out, err)
  local path = dir .. "/" .. LOCK_FILE
  local f = io.open(path, "r")
  if not f then
    err(string.format("jobrt: no daemon serves %s (%s is missing)\n", dir, path))
    return 1
  end
  local pid = math.tointeger(tonumber((f:read("l") or ""):match("^%s*(%d+)")))
  f:close()
  local cmd = pid and io.open("/proc/" .. pid .. "/cmdline", "rb")
  local argv = cmd and cmd:read("a") or ""
  if cmd then cmd:close() end
  if not pid or not argv:find("jobrt", 1, true) or not argv:find("serve", 1, true) then
    err(string.format("jobrt: the daemon of %s is not running (%s names pid %s)\n", dir, path, tostring(pid)))
    return 1
  end
  local ok, kerr = uv.kill(pid, signame)
  if not ok then
    err(string.format("jobrt: cannot signal pid %d: %s\n", pid, tostring(kerr)))
    return 1
  end
  out(string.format("sent %s to jobrt (pid %d, data %s)\n", signame:upper(), pid, dir))
  return 0
end

-- The authenticator and the URL signer for cfg; on the embedded default's
-- first start, the admin credential is generated and printed once.
local function trust(cfg)
  local auth = require("jobrt.auth")
  local boot, berr = auth.bootstrap(cfg)
  if berr then return nil, berr end
  if boot and boot.new and cfg.log and cfg.log.format == "json" then
    -- Still shown once, as one object like every other line.
    runtime.log("warn", "generated the admin credential (shown once; kept in " .. boot.file .. ")",
      { user = boot.user, password = boot.password, token = boot.token })
  elseif boot and boot.new then
    io.stderr:write(string.format(
      "\njobrt: generated the admin credential (shown once; kept in %s):\n"
        .. "  user:     %s\n  password: %s\n  token:    %s\n"
        .. "  e.g. curl -H 'Authorization: Bearer %s' %s://%s/jobrt/v1/jobs\n\n",
      boot.file, boot.user, boot.password, boot.token, boot.token,
      cfg.listen[1].tls and "https" or "http", cfg.listen[1].address))
  elseif boot then
    runtime.log("info", "admin credential: see " .. boot.file)
  end
  local authenticator, aerr = auth.new(cfg)
  if not authenticator then return nil, aerr end
  local signer, serr = require("jobrt.signed_url").new(cfg.data_dir .. "/auth")
  if not signer then return nil, serr end
  return { auth = authenticator, signer = signer }
end

local function optional_core()
  local ok, core = pcall(require, "jobrt.core")
  if ok then return core end
  return nil
end

-- start(cfg, loader, set_exit, reload) -> true | nil, err. reload() returns
-- a fresh cfg and loader (or nil, err) when SIGHUP asks for one.
function M.start(cfg, loader, set_exit, reload)
  local core = optional_core()
  if core then
    -- On a shared store, other instances see where this one serves.
    local first = cfg.listen and cfg.listen[1]
    if first and cfg.store then cfg.store.address = first.address end
    local ok, err = core.open(cfg)
    if not ok then return nil, "cannot open the job store: " .. tostring(err) end
  end

  local trusted, terr = trust(cfg)
  if not trusted then
    if core then core.close() end
    return nil, terr
  end
  -- Held jobs are asked again when what they wait for changes.
  local holds = core and require("jobrt.holds").new({ core = core, deadline = cfg.lua.deadline,
                                                      memory = cfg.lua.memory })
  trusted.holds = holds
  local app, err = server.new(cfg, loader, trusted)
  if not app then
    if core then core.close() end
    return nil, err
  end

  local listeners = {}
  local limits = {
    max_header = cfg.limits.max_header,
    max_body = cfg.limits.max_body,
    max_connections = cfg.limits.max_connections,
    idle_ms = math.floor(cfg.limits.idle_timeout * 1000),
    read_ms = math.floor(cfg.limits.read_timeout * 1000),
  }
  -- Requests already running keep the app they started with; SIGHUP swaps
  -- the one new requests get.
  local function handler(raw, exchange) app:handle(raw, exchange) end
  for _, l in ipairs(cfg.listen) do
    local s, lerr = http.listen({ host = l.host, port = l.port, limits = limits, tls = l.tls, handler = handler })
    if not s then
      for _, other in ipairs(listeners) do other:shutdown() end
      if core then core.close() end
      return nil, "listen " .. l.address .. ": " .. lerr
    end
    listeners[#listeners + 1] = s
    local host = l.host:find(":") and ("[" .. l.host .. "]") or l.host
    runtime.log("info", string.format("listening on %s://%s:%d", l.tls and "https" or "http", host, s:port()))
  end
  runtime.log("info", string.format("jobrt %s serving (pid %d, data %s)", runtime.version, runtime.pid(), cfg.data_dir))
  if holds then holds:start(function(surface) return app:pipeline(surface) end) end
  -- Jobs that waited for image pulls when the last daemon stopped go on.
  if core then
    require("jobrt.async").spawn(function()
      require("jobrt.pull_resume").resume(core, function(surface) return app:pipeline(surface) end,
        function(level, msg) runtime.log(level, msg) end)
    end, { on_error = function(err, _, trace)
      runtime.log("error", "resuming the jobs waiting for image pulls failed: " .. tostring(trace or err))
    end })
  end

  local signals, stopping = {}, false
  local grace

  local function finish()
    if grace then grace:close() end
    for _, sig in ipairs(signals) do if not sig:is_closing() then sig:close() end end
    if core then
      local ok, cerr = core.close()
      if not ok and cerr then
        runtime.log("error", "closing the job store: " .. tostring(cerr))
        set_exit(1)
        return
      end
    end
    runtime.log("info", "stopped")
    set_exit(0)
  end

  -- shutdown.tasks = stop: every running task is stopped (its grace
  -- applies) and goes back to ready for the next start, before the store
  -- closes. With keep (the default) they run on and the next daemon
  -- reattaches to them.
  local function stop_tasks_then(done)
    if not core or cfg.shutdown.tasks ~= "stop" or core.node().running == 0 then
      return done()
    end
    runtime.log("info", string.format("shutdown.tasks = stop: stopping %d running tasks",
      core.stop_tasks()))
    -- Bounded by the stops' own grace (kill_grace, 10 s by default).
    local deadline = uv.now() + math.floor((cfg.kill_grace or 10) * 1000) + 5000
    local poll = uv.new_timer()
    poll:start(50, 50, function()
      if core.node().running > 0 and uv.now() < deadline then return end
      poll:close()
      if core.node().running > 0 then
        runtime.log("warn", "shutdown: tasks still stopping; the next start recovers them")
      end
      done()
    end)
  end

  local function stop(signame)
    if stopping then
      runtime.log("warn", signame .. " again: closing every connection now")
      for _, s in ipairs(listeners) do s:abort() end
      return
    end
    stopping = true
    if holds then holds:stop() end
    runtime.log("info", string.format("%s: stopping (%d requests in flight)", signame, app.in_flight))
    -- Event streams never finish by themselves: they end now.
    if core then core.stop_watchers() end
    local open = #listeners
    for _, s in ipairs(listeners) do
      s:shutdown(function()
        open = open - 1
        if open == 0 then stop_tasks_then(finish) end
      end)
    end
    grace = uv.new_timer()
    grace:start(math.floor(cfg.limits.shutdown_grace * 1000), 0, function()
      runtime.log("warn", "shutdown grace period over: closing the remaining connections")
      for _, s in ipairs(listeners) do s:abort() end
    end)
    grace:unref()
  end

  for _, name in ipairs({ "sigterm", "sigint" }) do
    local sig = uv.new_signal()
    sig:start(name, function() stop(name:upper()) end)
    signals[#signals + 1] = sig
  end

  local function hangup()
    if stopping or not reload then return end
    local new_cfg, new_loader = reload()
    if not new_cfg then
      runtime.log("error", "SIGHUP: reload refused, keeping the running configuration: " .. tostring(new_loader))
      return
    end
    local new_trust, terr = trust(new_cfg)
    if not new_trust then
      runtime.log("error", "SIGHUP: reload refused, keeping the running configuration: " .. tostring(terr))
      return
    end
    new_trust.holds = holds
    local new_app, aerr = server.new(new_cfg, new_loader, new_trust)
    if not new_app then
      runtime.log("error", "SIGHUP: reload refused, keeping the running code: " .. tostring(aerr))
      return
    end
    app = new_app
    if holds then holds:use(function(surface) return app:pipeline(surface) end) end
    runtime.log("info", "SIGHUP: surfaces and plugins reloaded")
  end
  local hup = uv.new_signal()
  hup:start("sighup", hangup)
  signals[#signals + 1] = hup
  return true
end

return M
