-- `jobrt images ...`: the image store of a deployment (-c FILE) or of a
-- data directory (--data-dir DIR), whether its daemon runs or not (the
-- store's own lock file keeps changes apart): import, list, rm, gc, pull.
local images = require("jobrt.images")
local json = require("jobrt.json")

local M = {}

M.help = {
  usage = "images import|list|rm|gc|pull ... [-c FILE | --data-dir DIR]",
  summary = "manage the OCI image store (import, list, rm, gc, pull)",
  help = [[
Works on the image store in the data directory of the deployment -c FILE
(or of --data-dir DIR, default ./jobrt-data), whether its daemon runs or
not. A task's "image" names one of these first, then sandbox.images.

  images import FILE --name NAME[:TAG]
        import an OCI image layout archive (skopeo copy ... oci-archive:FILE)
        or a docker save archive (gzip'ed or not); without --name, the
        archive's own single name. Every blob is verified, every layer
        unpacked safely (a path escaping the image, a device node or a write
        through a symbolic link refuses the whole image).
  images list [--json]
        the images: name, unpacked size, layers, whether a running task uses
        it, where it came from.
  images rm NAME
        remove a name (refused while a running task uses the image) and what
        no other name keeps.
  images gc
        remove blobs, layers and partial downloads no name and no running
        task keeps.
  images pull REF [--name NAME]
        pull from a registry (OCI distribution API; bearer or basic auth
        from images.registries; a registry not listed there is reached at
        https://HOST without credentials); a multi-platform image gives this
        machine's platform.

Exit status: 0 done, 1 refused or failed (the message says why), 2 usage.]],
}

local function human(n)
  local units, i = { "B", "KiB", "MiB", "GiB", "TiB" }, 1
  n = n or 0
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and string.format("%d %s", n, units[i]) or string.format("%.1f %s", n, units[i])
end

local function parse(args)
  local opts, rest = {}, {}
  local known = { ["-c"] = "config", ["--config"] = "config", ["--data-dir"] = "data_dir",
                  ["--name"] = "name" }
  local i = 2
  while i <= #args do
    local a = args[i]
    local flag, value = a:match("^(%-%-[%w%-]+)=(.*)$")
    flag = flag or a
    if known[flag] then
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then return nil, "option " .. flag .. " needs a value" end
      end
      opts[known[flag]] = value
    elseif a == "--json" then
      opts.json = true
    elseif a:sub(1, 1) == "-" then
      return nil, "unknown option " .. a
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

-- The deployment's config: -c FILE, else the defaults; --data-dir wins.
local function load_cfg(opts)
  local config = require("jobrt.config")
  local cfg
  if opts.config then
    local list
    cfg, list = config.load(opts.config, { deep = false })
    if not cfg then
      for _, line in ipairs(config.format_errors(list)) do io.stderr:write(line, "\n") end
      return nil
    end
  else
    cfg = config.default()
  end
  if opts.data_dir then cfg.data_dir = opts.data_dir end
  return cfg
end

local function err_exit(msg)
  io.stderr:write("jobrt images: ", tostring(msg), "\n")
  return 1
end

local function show(info)
  io.stdout:write(string.format("%s\t%s\t%d layers\t%s\n", info.name, human(info.size),
    info.layers, info.manifest))
end

-- A terminal line per second at most.
local function progress_printer()
  local last = 0
  return function(ev)
    local now = require("jobrt.async").now()
    if ev.phase == "layers" and now - last < 1 and ev.done < ev.total then return end
    last = now
    if ev.phase == "layers" then
      io.stderr:write(string.format("pulling: %d/%d layers, %s of %s\n", ev.layers_done,
        ev.layers, human(ev.done), human(ev.total)))
    elseif ev.phase == "unpacking" then
      io.stderr:write("pulling: unpacking the layers\n")
    end
  end
end

-- run(args) -> exit code; args[1] is "images". Runs inside a coroutine.
function M.run(args)
  local opts, rest = parse(args)
  if not opts then io.stderr:write("jobrt images: ", rest, "\n") return 2 end
  local sub = rest[1]
  if not sub then
    io.stderr:write("usage: jobrt ", M.help.usage, "\n")
    return 2
  end
  local cfg = load_cfg(opts)
  if not cfg then return 1 end
  local store, err = images.open(cfg)
  if not store then return err_exit(err) end
  if sub == "import" then
    if not rest[2] or rest[3] then io.stderr:write("usage: jobrt images import FILE --name NAME\n") return 2 end
    local info, ierr = images.import(store, rest[2], opts.name)
    if not info then return err_exit(ierr) end
    show(info)
    return 0
  elseif sub == "list" or sub == "ls" then
    local list, lerr = store:list()
    if not list then return err_exit(lerr) end
    if opts.json then
      local strategy = store:strategy()
      io.stdout:write(json.encode({ images = json.array(list), usage = store:usage(),
        root = strategy }), "\n")
      return 0
    end
    io.stdout:write(string.format("%-40s %10s %6s %6s  %s\n", "NAME", "SIZE", "LAYERS", "IN USE", "SOURCE"))
    for _, i in ipairs(list) do
      io.stdout:write(string.format("%-40s %10s %6d %6s  %s\n", i.name, human(i.size), i.layers,
        i.in_use and "yes" or "no", i.source))
    end
    return 0
  elseif sub == "rm" then
    if not rest[2] then io.stderr:write("usage: jobrt images rm NAME...\n") return 2 end
    local code = 0
    for k = 2, #rest do
      local ok, rerr = images.remove(store, rest[k])
      if ok then io.stdout:write("removed ", rest[k], "\n") else code = err_exit(rerr) end
    end
    return code
  elseif sub == "gc" then
    local st, gerr = images.gc(store)
    if not st then return err_exit(gerr) end
    io.stdout:write(string.format("removed %d blobs, %d layers, %d merged roots, %d partial files: %s freed\n",
      st.blobs, st.layers, st.roots, st.temps, human(st.bytes)))
    return 0
  elseif sub == "pull" then
    if not rest[2] or rest[3] then io.stderr:write("usage: jobrt images pull REF [--name NAME]\n") return 2 end
    local info, perr = require("jobrt.image_pull").pull(cfg, store, rest[2],
      { name = opts.name, any_registry = true, progress = progress_printer() })
    if not info then return err_exit(perr) end
    show(info)
    return 0
  end
  io.stderr:write("jobrt images: unknown subcommand ", sub, " (import, list, rm, gc, pull)\n")
  return 2
end

return M
