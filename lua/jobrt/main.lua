-- The command line: serve, check, lua, eval, version, help. runtime/main.c calls
-- run(...) with the arguments; a nil result means "keep the loop running"
-- (serve, lua), and exit_code() then says how it ended.
local runtime = require("jobrt.runtime")

local M = {}

local exit_status = 0

local USAGE = [[
usage: jobrt <command> [options]

commands:
  serve [-c FILE] [--listen ADDR:PORT] [--data-dir DIR]
                      run a deployment (the embedded default without -c);
                      the flags override the file
  check -c FILE       validate a deployment file; prints FILE:LINE: key: message
                      for every problem and exits 1 if there is any
  lua FILE|- [ARGS]   run a Lua script inside the runtime, with every jobrt.*
                      module and the event loop available
  eval FILE|- [-o OUT]
                      evaluate an openEO process graph document (a job or
                      sync request body, a process or a bare graph); prints
                      the result as JSON (to OUT with -o), or the openEO
                      error as JSON on standard error and exits 1
  hash-password       read a password on standard input and print the hash
                      to put in a deployment's users.NAME.password_hash
  certs DIR           write a throwaway CA, server and client certificates
                      for trying TLS and mutual TLS locally
  version             print the version
  help                print this text
]]

function M.exit_code()
  return exit_status
end

local function usage_error(msg)
  io.stderr:write("jobrt: ", msg, "\n", USAGE)
  return 2
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

local function load_config(path)
  local config = require("jobrt.config")
  if not path then return config.default() end
  local cfg, errors = config.load(path)
  if not cfg then
    for _, line in ipairs(config.format_errors(errors)) do io.stderr:write(line, "\n") end
    return nil
  end
  return cfg
end

local function new_loader(cfg)
  return require("jobrt.plugins").new({
    lua_path = cfg.lua_path, deadline = cfg.lua.deadline, memory = cfg.lua.memory,
  })
end

local function cmd_check(args)
  local opts, rest = parse_flags(args, 2, { ["-c"] = "config", ["--config"] = "config" })
  if not opts then return usage_error(rest) end
  local path = opts.config or rest[1]
  if not path or #rest > (opts.config and 0 or 1) then return usage_error("check needs -c FILE") end
  local cfg = load_config(path)
  if not cfg then return 1 end
  -- Loading the surfaces catches a missing module or a broken one.
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
  local cfg = load_config(opts.config)
  if not cfg then return 1 end
  local config = require("jobrt.config")
  local err
  cfg, err = config.apply_overrides(cfg, { listen = opts.listen, data_dir = opts.data_dir })
  if not cfg then
    io.stderr:write("jobrt: ", err, "\n")
    return 2
  end
  runtime.set_log_level(cfg.log.level)
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
      local errors
      fresh, errors = config.load(opts.config)
      if not fresh then return nil, table.concat(config.format_errors(errors), "; ") end
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
  require("jobrt.async").spawn(chunk, {
    on_error = function(e, _, trace)
      io.stderr:write("jobrt: ", tostring(trace or e), "\n")
      exit_status = 1
    end,
  }, table.unpack(script_args))
  return nil
end

-- The evaluator as a command: what an openEO batch job runs in its task.
local function cmd_eval(args)
  local opts, rest = parse_flags(args, 2, { ["-o"] = "output", ["--output"] = "output" })
  if not opts then return usage_error(rest) end
  if #rest ~= 1 then return usage_error("eval needs one FILE (or - for standard input)") end
  -- The evaluator is surface code: loaded as the daemon loads it (from the
  -- binary), not from the folder the task happens to run in.
  local eval, lerr = require("jobrt.plugins").new({ deadline = 0, memory = 0 }):load("api.openeo.eval")
  if not eval then
    io.stderr:write(require("jobrt.json").encode({ code = "Internal", message = tostring(lerr) }), "\n")
    return 1
  end
  local input, text, err
  if rest[1] == "-" then
    input = io.stdin:read("a")
  else
    local f, ferr = io.open(rest[1], "rb")
    if not f then
      io.stderr:write(require("jobrt.json").encode({ code = "ProcessGraphMissing", message = ferr }), "\n")
      return 1
    end
    input = f:read("a")
    f:close()
  end
  text, err = eval.run(input)
  if not text then
    local e = type(err) == "table" and err or { code = "Internal", message = tostring(err) }
    io.stderr:write(require("jobrt.json").encode({
      code = e.code or "Internal", message = e.message or tostring(e.code), node = e.node,
      process = e.process,
    }), "\n")
    return 1
  end
  if opts.output then
    local f, ferr = io.open(opts.output, "wb")
    if not f then
      io.stderr:write(require("jobrt.json").encode({ code = "StorageFailure", message = ferr }), "\n")
      return 1
    end
    local ok, werr = f:write(text, "\n")
    ok = ok and f:close()
    if not ok then
      io.stderr:write(require("jobrt.json").encode({ code = "StorageFailure", message = tostring(werr) }), "\n")
      return 1
    end
    return 0
  end
  io.stdout:write(text, "\n")
  return 0
end

function M.run(...)
  local args = { ... }
  local cmd = args[1]
  if cmd == "serve" then return cmd_serve(args) end
  if cmd == "check" then return cmd_check(args) end
  if cmd == "lua" then return cmd_lua(args) end
  if cmd == "eval" then return cmd_eval(args) end
  if cmd == "hash-password" then return require("jobrt.auth").hash_password_command(args) end
  if cmd == "version" or cmd == "--version" then
    if #args > 1 then return usage_error("version takes no arguments") end
    io.stdout:write("jobrt ", runtime.version, " (", _VERSION, ")\n")
    return 0
  end
  if cmd == "help" or cmd == "--help" or cmd == "-h" then
    io.stdout:write(USAGE)
    return 0
  end
  if cmd == nil then return usage_error("no command given") end
  return usage_error("unknown command " .. cmd)
end

return M
