-- The command line. runtime/main.c calls run(...) with the arguments; a nil
-- result means "keep the loop running" (serve, lua), and exit_code() then
-- says how it ended; finish() runs before the loop's handles are closed.
-- Commands this file does not know are asked of the mounted surfaces, whose
-- modules may offer their own (`commands = {NAME = {usage, summary, help,
-- flags, run}}`, e.g. openEO's eval), so nothing here knows a surface.
local runtime = require("jobrt.runtime")

local M = {}

local exit_status = 0

function M.exit_code()
  return exit_status
end

-- What a script or the daemon left open closes its own handles before the
-- loop's remaining ones are closed for it.
function M.finish()
  local core = package.loaded["jobrt.core"]
  if type(core) == "table" and core.close then core.close() end
  return 0
end

-- Parse "--flag value" / "-f value" / "--flag=value" options.
local function parse_flags(args, first, known)
  local opts, rest = {}, {}
  local i = first
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    if known[name] then
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then return nil, "option " .. name .. " needs a value" end
      end
      opts[known[name]] = value
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return nil, "unknown option " .. a
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

local function is_help(a) return a == "--help" or a == "-h" end

local function print_errors(config, list)
  for _, line in ipairs(config.format_errors(list)) do io.stderr:write(line, "\n") end
end

-- cfg (the embedded default without a path) | nil after printing why.
-- Warnings go to standard error too, or to the log when serving.
local function load_config(path, warn)
  local config = require("jobrt.config")
  if not path then return config.default() end
  local cfg, problems = config.load(path)
  if not cfg then
    print_errors(config, problems)
    return nil
  end
  for _, line in ipairs(config.format_errors(problems or {})) do
    if warn then warn(line) else io.stderr:write(line, "\n") end
  end
  return cfg
end

-- The loader that already holds cfg's modules and checked options.
local function new_loader(cfg) return require("jobrt.config").loader(cfg) end

---------------------------------------------------------------------------
-- Surface commands

-- The commands the surfaces of cfg offer: {name = {surface =, spec =}},
-- or nil and an error. A module that fails to load offers none here; serve
-- and check report it.
local function surface_commands(cfg)
  local loader = new_loader(cfg)
  local names = {}
  for name in pairs(cfg.surfaces) do names[#names + 1] = name end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    local mod = loader:surface(name, cfg.surfaces[name].module)
    if type(mod) == "table" and type(mod.commands) == "table" then
      for cmd, spec in pairs(mod.commands) do
        if type(cmd) == "string" and type(spec) == "table" and type(spec.run) == "function" and not out[cmd] then
          out[cmd] = { surface = name, spec = spec }
        end
      end
    end
  end
  return out
end

local function read_input(path)
  if path == "-" then return io.stdin:read("a") end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

local function write_output(path, text)
  if path == nil then
    io.stdout:write(text)
    return true
  end
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok then return nil, tostring(werr) end
  if not closed then return nil, tostring(cerr) end
  return true
end

-- The usage of the command being run (set by run), for usage errors.
local current_usage

local function usage_error(msg)
  io.stderr:write("jobrt: ", msg, "\n")
  if current_usage then
    io.stderr:write("usage: jobrt ", current_usage, "\n(jobrt help lists the commands)\n")
  else
    io.stderr:write("usage: jobrt <command> [options] (jobrt help lists the commands)\n")
  end
  return 2
end

-- `jobrt [-c FILE] NAME ...` for a command a surface offers; -c picks the
-- deployment whose surfaces are asked (the embedded default otherwise).
local function run_surface_command(name, args)
  local known = { ["-c"] = "config", ["--config"] = "config" }
  local path
  local rest = {}
  local i = 2
  while i <= #args do
    if known[args[i]] then
      path = args[i + 1]
      if not path then return usage_error("option " .. args[i] .. " needs a value") end
      i = i + 2
    else
      rest[#rest + 1] = args[i]
      i = i + 1
    end
  end
  local cfg = load_config(path)
  if not cfg then return 1 end
  local found = surface_commands(cfg)[name]
  if not found then return nil end
  local spec = found.spec
  current_usage = spec.usage or name
  if is_help(rest[1]) then
    io.stdout:write("usage: jobrt ", spec.usage or name, "\n\n", spec.help or spec.summary or "", "\n")
    return 0
  end
  local opts, positional = parse_flags(rest, 1, spec.flags or {})
  if not opts then return usage_error(name .. ": " .. positional) end
  local ok, code, err = xpcall(spec.run, debug.traceback, {
    args = positional, options = opts, read = read_input, write = write_output,
    stderr = function(text) io.stderr:write(text) end,
  })
  if not ok then
    io.stderr:write("jobrt ", name, ": ", tostring(code), "\n")
    return 1
  end
  if code == nil then return usage_error(name .. ": " .. tostring(err)) end
  return math.tointeger(code) or 1
end

---------------------------------------------------------------------------
-- Built-in commands

local function cmd_check(args)
  local opts, rest = parse_flags(args, 2, { ["-c"] = "config", ["--config"] = "config" })
  if not opts then return usage_error(rest) end
  local path = opts.config or rest[1]
  if not path or #rest > (opts.config and 0 or 1) then return usage_error("check needs -c FILE") end
  local cfg = load_config(path)
  if not cfg then return 1 end
  -- Mounting the surfaces runs their routes, which may fail on their own.
  local app, err = require("jobrt.server").new(cfg, new_loader(cfg))
  if not app then
    io.stderr:write(path, ": ", err, "\n")
    return 1
  end
  io.stdout:write(path, ": ok\n")
  return 0
end

local function mkdir_p(path)
  local uv = require("luv")
  local sofar = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    local ok, err, code = uv.fs_mkdir(sofar, 448) -- 0700
    if not ok and code ~= "EEXIST" then return nil, err end
  end
  return true
end

local function cmd_serve(args)
  local opts, rest = parse_flags(args, 2, {
    ["-c"] = "config", ["--config"] = "config",
    ["--listen"] = "listen", ["--data-dir"] = "data_dir",
  })
  if not opts then return usage_error(rest) end
  if #rest > 0 then return usage_error("unexpected argument " .. rest[1]) end
  local function warn(line) runtime.log("warn", line) end
  -- The file's warnings are logged once its log settings apply.
  local warnings = {}
  local cfg = load_config(opts.config, function(line) warnings[#warnings + 1] = line end)
  if not cfg then return 1 end
  local config = require("jobrt.config")
  local err
  cfg, err = config.apply_overrides(cfg, { listen = opts.listen, data_dir = opts.data_dir })
  if not cfg then
    io.stderr:write("jobrt: ", err, "\n")
    return 2
  end
  runtime.set_log_level(cfg.log.level)
  runtime.set_log_format(cfg.log.format)
  runtime.set_metrics(cfg.metrics.enabled)
  for _, line in ipairs(warnings) do warn(line) end
  runtime.set_memory_limit(cfg.lua.state_memory)
  -- Tasks see the data directory through bind mounts, which need absolute
  -- paths; a relative one is taken from where jobrt was started.
  if cfg.data_dir:sub(1, 1) ~= "/" then
    cfg.data_dir = require("luv").cwd() .. "/" .. cfg.data_dir:gsub("^%./", "")
  end

  local ok
  ok, err = mkdir_p(cfg.data_dir)
  if not ok then
    io.stderr:write("jobrt: cannot create data directory ", cfg.data_dir, ": ", tostring(err), "\n")
    return 1
  end

  -- SIGHUP reads the file again; listeners and the data directory stay.
  local function reload()
    local fresh = cfg
    if opts.config then
      local problems
      fresh, problems = config.load(opts.config)
      if not fresh then return nil, table.concat(config.format_errors(problems), "; ") end
      for _, line in ipairs(config.format_errors(problems or {})) do warn(line) end
      if not opts.data_dir and fresh.data_dir ~= cfg.data_dir then
        runtime.log("warn", "SIGHUP: data_dir changed; it takes effect at the next start")
      end
      fresh.listen, fresh.data_dir = cfg.listen, cfg.data_dir
    end
    return fresh, new_loader(fresh)
  end
  local daemon = require("jobrt.daemon")
  ok, err = daemon.start(cfg, new_loader(cfg), function(code) exit_status = code end, reload)
  if not ok then
    io.stderr:write("jobrt: ", err, "\n")
    return 1
  end
  return nil
end

local function cmd_lua(args)
  local file = args[2]
  if not file then return usage_error("lua needs a FILE (or - for standard input)") end
  local src, chunkname
  if file == "-" then
    src, chunkname = io.stdin:read("a"), "=stdin"
  else
    local f, err = io.open(file, "rb")
    if not f then
      io.stderr:write("jobrt: ", err, "\n")
      return 1
    end
    src, chunkname = f:read("a"), "@" .. file
    f:close()
  end
  local chunk, err = load(src, chunkname, "t")
  if not chunk then
    io.stderr:write("jobrt: ", err, "\n")
    return 1
  end
  local script_args = { [0] = file }
  for i = 3, #args do script_args[#script_args + 1] = args[i] end
  _G.arg = script_args
  -- An error in the main chunk, or in a callback luv calls later, fails the
  -- script: its traceback on standard error, exit status 1.
  local function failed(trace)
    io.stderr:write("jobrt: ", tostring(trace), "\n")
    exit_status = 1
    -- Timers, servers or watchers the script started would keep the
    -- loop running after its failure.
    require("luv").stop()
  end
  require("jobrt.callbacks").on_error(failed)
  require("jobrt.async").spawn(chunk, {
    on_error = function(e, _, trace) failed(trace or e) end,
  }, table.unpack(script_args))
  return nil
end

local function cmd_hash_password(args)
  return require("jobrt.auth").hash_password_command(args)
end

local function cmd_version(args)
  if #args > 1 then return usage_error("version takes no arguments") end
  io.stdout:write("jobrt ", runtime.version, " (", _VERSION, ")\n")
  return 0
end

local cmd_help

-- jobrt policy test FILE JOB.json [-c FILE] [--plugin NAME] [--owner NAME]
local function cmd_policy(args)
  if args[2] ~= "test" then return usage_error("policy needs a subcommand: test") end
  local opts, rest = parse_flags(args, 3, { ["-c"] = "config", ["--config"] = "config",
    ["--plugin"] = "plugin", ["--owner"] = "owner" })
  if not opts then return usage_error(rest) end
  if #rest ~= 2 then return usage_error("policy test needs FILE and JOB.json") end
  opts.file, opts.job = rest[1], rest[2]
  return require("jobrt.policy_cmd").run(opts, function(t) io.stdout:write(t) end,
    function(t) io.stderr:write(t) end)
end

-- jobrt reload [-c FILE] [--data-dir DIR]: SIGHUP to the daemon serving
-- that data directory (its pid in DATA/daemon.lock).
local function cmd_reload(args)
  local opts, rest = parse_flags(args, 2, { ["-c"] = "config", ["--config"] = "config", ["--data-dir"] = "data_dir" })
  if not opts then return usage_error(rest) end
  if #rest > 0 then return usage_error("unexpected argument " .. rest[1]) end
  local dir = opts.data_dir
  if not dir then
    local cfg = load_config(opts.config)
    if not cfg then return 1 end
    dir = cfg.data_dir
  end
  return require("jobrt.daemon").signal(dir, "sighup", function(t) io.stdout:write(t) end,
    function(t) io.stderr:write(t) end)
end

-- The client commands (jobrt.cli) talk HTTP, which waits on the loop: they
-- run as a coroutine, and their exit code is set when they end.
local function client_command(name)
  return function(args)
    require("jobrt.async").spawn(function()
      exit_status = require("jobrt.cli").run(name, args)
    end, { on_error = function(err, _, trace)
      io.stderr:write("jobrt ", name, ": ", tostring(trace or err), "\n")
      exit_status = 1
    end })
    return nil
  end
end

-- Every built-in command with its help; sandbox-check and certs run in C
-- (runtime/main.c) before Lua starts, and are here for help only.
local COMMANDS = {
  { name = "serve", run = function(a) return cmd_serve(a) end,
    usage = "serve [-c FILE] [--listen ADDR:PORT] [--data-dir DIR]",
    summary = "run a deployment (the embedded default without -c)",
    help = [[
Runs the daemon: opens the job store in the data directory, mounts the
surfaces and listens until SIGTERM or SIGINT (SIGHUP reloads the file's
surfaces and plugins). Without -c it runs the embedded default
(deploy/default.yaml). Every problem of the file is reported as
FILE:LINE: key: message before anything starts. The log goes to standard
error, as text or (log: {format: json}) one JSON object per line carrying
each request's X-Request-Id; Prometheus metrics are served at
/jobrt/metrics to admins and to the scraper holding metrics.token.

  -c, --config FILE   the deployment file
  --listen ADDR:PORT  replaces the file's plain (non-TLS) listeners; TLS
                      listeners of the file stay. An address that is one of
                      the file's TLS listeners is refused.
  --data-dir DIR      replaces data_dir]] },
  { name = "check", run = function(a) return cmd_check(a) end,
    usage = "check -c FILE",
    summary = "validate a deployment file, listing every problem",
    help = [[
Validates a deployment file without serving: its keys and values, every
plugin's and surface's options against the module's schema (with
suggestions for misspelt keys), plugin modules that do not exist, unknown
roles, TLS files that are missing or do not parse, and surfaces sharing a
mount; then mounts the surfaces. Prints FILE:LINE: key: message for each
problem and exits 1 if there is any; warnings (a plugin nothing uses) are
printed as FILE:LINE: warning: ... and do not change the exit status.]] },
  { name = "lua", run = function(a) return cmd_lua(a) end,
    usage = "lua FILE|- [ARGS]",
    summary = "run a Lua script inside the runtime",
    help = [[
Runs a Lua script (FILE, or standard input with -) as a coroutine on the
event loop, with every jobrt.* module available and ARGS in the global
`arg`. The command ends when the loop has nothing left to do. A script
error, in the main chunk or in a luv callback (a timer's, a handle's),
prints the error with its traceback and exits 1.]] },
  { name = "sandbox-check",
    usage = "sandbox-check [--cgroup-parent PATH] [--clean-stale]",
    summary = "print which sandbox layers this machine allows",
    help = [[
Probes the sandbox layers (namespaces, seccomp, cgroups, limits) and prints
which this machine allows; exits 0. --clean-stale first removes task
cgroups left under PATH (default jobrt), as the daemon does at start-up.]] },
  { name = "certs",
    usage = "certs DIR",
    summary = "write throwaway certificates for trying TLS and mTLS",
    help = [[
Writes into DIR a throwaway CA (ca.crt), a server certificate and key
(server.crt, server.key for localhost, 127.0.0.1 and ::1) and a client
certificate and key (client.crt, client.key, CN=client), for trying TLS and
mutual TLS locally (see deploy/mtls.yaml). Not for production.]] },
  { name = "images", run = function(args)
      require("jobrt.async").spawn(function()
        exit_status = require("jobrt.images_cli").run(args)
      end, { on_error = function(err, _, trace)
        io.stderr:write("jobrt images: ", tostring(trace or err), "\n")
        exit_status = 1
      end })
      return nil
    end, images = true },
  { name = "policy", run = function(a) return cmd_policy(a) end,
    usage = require("jobrt.policy_cmd").usage, summary = require("jobrt.policy_cmd").summary,
    help = require("jobrt.policy_cmd").help },
  { name = "reload", run = function(a) return cmd_reload(a) end,
    usage = "reload [-c FILE] [--data-dir DIR]",
    summary = "reload the plugins and surfaces of a running daemon",
    help = [[
Sends SIGHUP to the daemon serving a data directory (--data-dir, or the
data_dir of -c FILE, or the default ./jobrt-data), found by the pid it
keeps in DATA/daemon.lock. The daemon reads its file again and reloads
surfaces and plugins; requests in flight finish on the code they started
with, and a file or plugin that no longer loads keeps the running version
(the daemon logs FILE:LINE: message).]] },
  { name = "login", run = client_command("login"), client = "login" },
  { name = "jobs", run = client_command("jobs"), client = "jobs" },
  { name = "hash-password", run = cmd_hash_password,
    usage = "hash-password < FILE",
    summary = "hash a password for users.NAME.password_hash",
    help = [[
Reads a password on standard input and prints the hash to put in a
deployment's users.NAME.password_hash.]] },
  { name = "version", run = cmd_version,
    usage = "version",
    summary = "print the version",
    help = "Prints jobrt's version and the Lua version it embeds." },
  { name = "help", run = function(a) return cmd_help(a) end,
    usage = "help [COMMAND]",
    summary = "list the commands, or explain one",
    help = [[
Without COMMAND lists every command, those the mounted surfaces offer
included; `jobrt help COMMAND` or `jobrt COMMAND --help` explains one.
`jobrt help --man` prints all of it as the jobrt(1) manual page (roff).]] },
}

local BY_NAME = {}
for _, c in ipairs(COMMANDS) do
  if c.client then
    local h = require("jobrt.cli").help[c.client]
    c.usage, c.summary, c.help = h.usage, h.summary, h.help
  elseif c.images then
    local h = require("jobrt.images_cli").help
    c.usage, c.summary, c.help = h.usage, h.summary, h.help
  end
  BY_NAME[c.name] = c
end

local function command_help(c)
  return "usage: jobrt " .. c.usage .. "\n\n" .. (c.help or c.summary or "") .. "\n"
end

local function listing(cfg)
  local extra = {}
  for name, found in pairs(cfg and surface_commands(cfg) or {}) do
    if not BY_NAME[name] then
      extra[#extra + 1] = { found.spec.usage or name,
        (found.spec.summary or "") .. " (surface " .. found.surface .. ")" }
    end
  end
  table.sort(extra, function(a, b) return a[1] < b[1] end)
  -- The surfaces' commands go after the ways of running Lua.
  local rows = {}
  for i, c in ipairs(COMMANDS) do
    rows[#rows + 1] = { c.usage, c.summary }
    if c.name == "lua" then
      for _, r in ipairs(extra) do rows[#rows + 1] = r end
    end
    if i == #COMMANDS and #rows < #COMMANDS + #extra then
      for _, r in ipairs(extra) do rows[#rows + 1] = r end
    end
  end
  local out = { "usage: jobrt <command> [options]", "", "commands:" }
  for _, r in ipairs(rows) do
    if #r[1] <= 24 then
      out[#out + 1] = string.format("  %-24s %s", r[1], r[2])
    else
      out[#out + 1] = "  " .. r[1]
      out[#out + 1] = string.rep(" ", 27) .. r[2]
    end
  end
  out[#out + 1] = ""
  out[#out + 1] = "jobrt help COMMAND (or jobrt COMMAND --help) explains one."
  return table.concat(out, "\n") .. "\n"
end

-- jobrt(1): every command's help, the surfaces' included, as roff.
local function man_page()
  local commands = {}
  for _, c in ipairs(COMMANDS) do
    commands[#commands + 1] = { usage = c.usage, summary = c.summary, help = c.help }
  end
  local extra = {}
  for name, found in pairs(surface_commands(require("jobrt.config").default())) do
    if not BY_NAME[name] then
      extra[#extra + 1] = { usage = found.spec.usage or name, summary = found.spec.summary,
        help = found.spec.help, surface = found.surface }
    end
  end
  table.sort(extra, function(a, b) return a.usage < b.usage end)
  for _, c in ipairs(extra) do commands[#commands + 1] = c end
  return require("jobrt.manpage").render({ version = runtime.version, commands = commands })
end

cmd_help = function(args)
  local name = args[2]
  if name == "--man" and #args == 2 then
    io.stdout:write(man_page())
    return 0
  end
  if name == nil then
    io.stdout:write(listing(require("jobrt.config").default()))
    return 0
  end
  if #args > 2 then return usage_error("help takes one COMMAND") end
  if BY_NAME[name] then
    io.stdout:write(command_help(BY_NAME[name]))
    return 0
  end
  local code = run_surface_command(name, { name, "--help" })
  if code ~= nil then return code end
  return usage_error("unknown command " .. name)
end

function M.run(...)
  local args = { ... }
  local name = args[1]
  if name == nil then
    io.stderr:write("jobrt: no command given\n\n", listing(require("jobrt.config").default()))
    return 2
  end
  if name == "--help" or name == "-h" then name = "help" end
  if name == "--version" then name = "version" end
  args[1] = name
  local c = BY_NAME[name]
  if c then
    current_usage = c.usage
    if is_help(args[2]) then
      io.stdout:write(command_help(c))
      return 0
    end
    if not c.run then return usage_error(name .. " runs before Lua starts; this is a bug") end
    return c.run(args)
  end
  local code = run_surface_command(name, args)
  if code ~= nil then return code end
  return usage_error("unknown command " .. name)
end

return M
