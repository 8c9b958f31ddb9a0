-- The deployment file: its schema, defaults and validation. A file states only
-- what differs from the defaults; every problem in it is reported, each as
-- {file, line, key, message}, so `jobrt check` can list them all at once.
-- Its parts: jobrt.config_types (value checkers), jobrt.config_listen
-- (addresses, listeners, TLS files) and jobrt.config_modules (the deep pass
-- over the plugins' and surfaces' modules and options).
local yaml = require("jobrt.yaml")
local S = require("jobrt.schema")
local types = require("jobrt.config_types")
local listen = require("jobrt.config_listen")
local modules = require("jobrt.config_modules")

local M = {}

local NULL = yaml.null

-- The surfaces the runtime ships, with their default mount and module. A
-- deployment may name these without "module"; adding one is one line here.
local BUILTIN_SURFACES = {
  native = { mount = "/jobrt/v1", module = "api.native" },
  openeo = { mount = "/openeo/1.2", module = "api.openeo" },
  bacalhau = { mount = "/requester", module = "api.bacalhau" },
  kuscia = { mount = "/api/v1/job", module = "api.kuscia" },
}
M.BUILTIN_SURFACES = BUILTIN_SURFACES

-- The sandbox layers `sandbox.require` may insist on (see runtime/sandbox).
-- The names `jobrt sandbox-check` reports (runtime/sandbox/outcome.c).
local SANDBOX_LAYERS = {
  "userns", "mountns", "pidns", "ipcns", "utsns", "cgroupns", "netns",
  "pivot_root", "no_new_privs", "caps", "seccomp", "rlimits", "cgroup",
  "memory_limit", "pids_limit", "cpu_limit", "cgroup_kill",
}

local KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024

local DEFAULT_LISTEN = "127.0.0.1:8080"

local is_null, is_map, is_seq = S.is_null, S.is_map, S.is_seq
local describe, deep_copy, join = S.describe, S.deep_copy, S.join
local suggest, sorted_keys, new_check = S.suggest, S.sorted_keys, S.new_check
local T, record, known = types.T, types.record, types.known
local absolute_path, module_name = types.absolute_path, types.module_name
local parse_address = listen.parse_address

---------------------------------------------------------------------------
-- users, surfaces, plugins, sandbox images: mappings of named entries

-- The roles jobrt.auth and the surfaces act on: admin sees and changes
-- every job and approves held ones; user (what tokens and mTLS clients get)
-- sees its own; approver, like user, and decides on the held jobs of
-- policies that name it (approve.manual's roles).
local ROLES = { "admin", "approver", "user" }

local each_role = known("role", ROLES)

local USER_FIELDS = {
  password_hash = { type = "string" },
  password = { type = "string" },
  roles = { type = "strings", default = {}, each = each_role },
}

local function check_users(c, v, path, line)
  if not c:mapping(path, line, v, "a mapping of user names") then return false end
  local out = {}
  for _, name in ipairs(c:keys(v)) do
    local p, l, u = join(path, name), c:line(v, name, line), v[name]
    if name == "" or name:find("[:%c%s]") then
      c:add(p, l, "user names may not be empty or hold ':', spaces or control characters")
    elseif c:mapping(p, l, u, "a mapping with password_hash or password, and roles") then
      local user = record(c, u, p, l, USER_FIELDS)
      local has_hash, has_password = not is_null(u.password_hash), not is_null(u.password)
      if has_hash and has_password then
        c:add(p, l, 'give "password_hash" or "password", not both')
      elseif not has_hash and not has_password then
        c:add(p, l, 'missing "password_hash" (or "password")')
      end
      out[name] = user
    end
  end
  return true, out
end

local function check_mount(c, v, path, line)
  local ok, s = T.string(c, v, path, line)
  if not ok then return false end
  if s:sub(1, 1) ~= "/" then
    c:add(path, line, 'must start with "/", got "%s"', s)
  elseif s ~= "/" and s:sub(-1) == "/" then
    c:add(path, line, 'must not end with "/", got "%s"', s)
  elseif s:find("//", 1, true) or s:find("[%s?#{}%%]") then
    c:add(path, line, 'not a plain path: "%s"', s)
  else
    return true, s
  end
  return false
end

local function check_surfaces(c, v, path, line)
  local out = {}
  for name, def in pairs(BUILTIN_SURFACES) do out[name] = deep_copy(def) end
  if not c:mapping(path, line, v, "a mapping of surface names") then return false end
  local mount_lines = {}
  local builtin_names = sorted_keys(BUILTIN_SURFACES)
  for _, name in ipairs(c:keys(v)) do
    local p, l, s = join(path, name), c:line(v, name, line), v[name]
    local builtin = BUILTIN_SURFACES[name]
    if s == false then
      out[name] = nil
    elseif not (is_null(s) or s == true or is_map(s)) then
      c:type_error(p, l, "a mapping, or false to unmount it", s)
    else
      local surface = builtin and deep_copy(builtin) or {}
      if is_map(s) then
        for k, x in pairs(s) do
          if not is_null(x) then surface[k] = x end
        end
      end
      local good = true
      if is_null(surface.module) then
        local guess = suggest(name, builtin_names)
        c:add(p, l, 'unknown surface%s: a surface of your own needs "module" (built in: %s)',
          guess and string.format(' (did you mean "%s"?)', guess) or "",
          table.concat(builtin_names, ", "))
        good = false
      else
        local ok, m = T.string(c, surface.module, join(p, "module"), c:line(s, "module", l))
        good = ok and module_name(c, m, join(p, "module"), c:line(s, "module", l)) and good
      end
      if is_null(surface.mount) then
        if not is_null(surface.module) then c:add(p, l, 'missing "mount" (e.g. "/%s")', name) end
        good = false
      else
        local ml = c:line(s, "mount", l)
        good = check_mount(c, surface.mount, join(p, "mount"), ml) and good
        mount_lines[name] = ml
      end
      if good then out[name] = surface else out[name] = nil end
    end
  end
  -- Two surfaces may share "/" (each owns different paths under it), but not
  -- any other mount; the later one in the file is reported.
  local names = sorted_keys(out)
  table.sort(names, function(a, b)
    local la, lb = mount_lines[a] or 0, mount_lines[b] or 0
    if la ~= lb then return la < lb end
    return a < b
  end)
  local owner = {}
  for _, name in ipairs(names) do
    local mount = out[name].mount
    if mount ~= "/" and owner[mount] then
      c:add(join(join(path, name), "mount"), mount_lines[name] or line,
        '"%s" is already the mount of %s', mount, join(path, owner[mount]))
      out[name] = nil
    elseif mount ~= "/" then
      owner[mount] = name
    end
  end
  return true, out
end

local function check_plugins(c, v, path, line)
  if not c:mapping(path, line, v, "a mapping of plugin names") then return false end
  local out = {}
  for _, name in ipairs(c:keys(v)) do
    local p, l, x = join(path, name), c:line(v, name, line), v[name]
    if c:mapping(p, l, x, 'a mapping with "use"') then
      if is_null(x.use) then
        c:add(p, l, 'missing "use" (the plugin module, e.g. "approve.image_allowlist")')
      else
        local ul = c:line(x, "use", l)
        local ok, use = T.string(c, x.use, join(p, "use"), ul)
        if ok and module_name(c, use, join(p, "use"), ul) then
          local plugin = {}
          for k, opt in pairs(x) do plugin[k] = opt end
          out[name] = plugin
        end
      end
    end
  end
  return true, out
end

local function check_images(c, v, path, line, spec)
  local out = deep_copy(spec.default)
  if not c:mapping(path, line, v, "a mapping of image names to folders") then return false end
  for _, name in ipairs(c:keys(v)) do
    local p, l, x = join(path, name), c:line(v, name, line), v[name]
    if x == false or is_null(x) then
      out[name] = nil
    else
      local ok, s = T.string(c, x, p, l)
      if ok and absolute_path(c, s, p, l) then out[name] = s end
    end
  end
  return true, out
end

T.path = function(c, v, path, line)
  local ok, s = T.string(c, v, path, line)
  if ok and absolute_path(c, s, path, line) then return true, s end
  return false
end

-- images.registries: where `jobrt images pull` and on-demand pulls go,
-- each a host as references name it ("127.0.0.1:5000", "docker.io") with
-- the URL to reach it (default https://HOST) and optional credentials.
local REGISTRY_FIELDS = {
  host = { type = "string" },
  url = { type = "string" },
  username = { type = "string" },
  password = { type = "string" },
}

local function check_registries(c, v, path, line)
  if not is_seq(v) then c:type_error(path, line, "a list of registries ({host, url})", v) return false end
  local out, ok = {}, true
  for i, r in ipairs(v) do
    local p, l = join(path, i), c:line(v, i, line)
    if c:mapping(p, l, r, "a mapping with host (and url, username, password)") then
      local reg = record(c, r, p, l, REGISTRY_FIELDS)
      if not reg.host then
        c:add(p, l, 'missing "host" (as image references name it, e.g. "registry.example:5000")')
        ok = false
      elseif not reg.host:find("^[%w.-]+:?%d*$") then
        c:add(join(p, "host"), l, 'not a host[:port]: "%s"', reg.host)
        ok = false
      end
      if reg.url and not reg.url:find("^https?://[^/]+/?$") then
        c:add(join(p, "url"), l, 'must be http(s)://HOST[:PORT], got "%s"', reg.url)
        ok = false
      end
      if (reg.username == nil) ~= (reg.password == nil) then
        c:add(p, l, 'give both "username" and "password", or neither')
        ok = false
      end
      if reg.host then
        reg.url = (reg.url or ("https://" .. reg.host)):gsub("/$", "")
        out[#out + 1] = reg
      end
    else
      ok = false
    end
  end
  return ok, out
end


-- A bearer token Prometheus sends to scrape the metrics: long enough not
-- to be guessed, and nothing an Authorization header cannot carry.
local function check_scrape_token(c, v, path, line)
  local ok, s = T.string(c, v, path, line)
  if not ok then return false end
  if #s < 16 then
    c:add(path, line, "must be at least 16 characters (e.g. the output of `openssl rand -hex 16`)")
    return false
  elseif not s:match("^[%w%-%._~%+/=]+$") then
    c:add(path, line, "may hold only letters, digits and -._~+/= (it is sent as a bearer token)")
    return false
  end
  return true, s
end


T.listen = listen.check
T.registries = check_registries
T.scrape_token = check_scrape_token
T.users = check_users
T.surfaces = check_surfaces
T.plugins = check_plugins
T.images = check_images

---------------------------------------------------------------------------
-- The schema

local each_layer = known("sandbox layer", SANDBOX_LAYERS)

local function each_absolute(c, s, path, line) return absolute_path(c, s, path, line) end

local SCHEMA = {
  listen = { type = "listen", default = nil }, -- filled in by normalise
  data_dir = { type = "string", default = "./jobrt-data" },
  lua_path = { type = "strings", default = {} },
  node = { type = "record", fields = {
    cpu = { type = "cpu", positive = true },       -- nil: what the machine has
    memory = { type = "bytes", positive = true },  -- nil: what the machine has
    gpu = { type = "count", default = 0 },
    max_tasks = { type = "count", default = 16, min = 1 },
  } },
  sandbox = { type = "record", fields = {
    network = { type = "enum", values = { "none", "full", "allow" }, default = "none" },
    require = { type = "strings", default = {}, each = each_layer },
    images = { type = "images", default = { host = "/" } },
    allow_host_paths = { type = "strings", default = {}, each = each_absolute },
    -- A task outlives the daemon; its helper stops it after this long with
    -- no daemon attached (0 = never).
    orphan_timeout = { type = "duration", default = 600 },
  } },
  -- The job store: the embedded SQLite database in data_dir, or a
  -- PostgreSQL database that several instances share (url:
  -- postgresql://user@host:port/dbname; README "Beyond one machine").
  -- timeout bounds a wait for the server; an instance that has not
  -- heartbeated for failover has its running tasks failed over (retried per
  -- their retries) by the others: keep it above sandbox.orphan_timeout, so
  -- that its tasks have been stopped by then.
  store = { type = "record", fields = {
    backend = { type = "enum", values = { "sqlite", "postgres" }, default = "sqlite" },
    url = { type = "string" },
    timeout = { type = "duration", default = 10, positive = true },
    heartbeat = { type = "duration", default = 2, positive = true },
    failover = { type = "duration", default = 900, positive = true },
  } },
  -- The image store (DATA/images): OCI images as task roots.
  images = { type = "record", fields = {
    -- never: only imported or pulled images run; on_demand: a task naming
    -- an image of a listed registry pulls it first.
    pull = { type = "enum", values = { "never", "on_demand" }, default = "never" },
    registries = { type = "registries", default = {} },
    max_image_size = { type = "bytes", default = 0 },  -- unpacked; 0 = no limit
    max_store_size = { type = "bytes", default = 0 },  -- 0 = no limit
    -- How a task's root is made: overlayfs over the layers where the
    -- kernel allows it in the task's user namespace (auto), or a merged
    -- copy per image.
    root = { type = "enum", values = { "auto", "overlay", "copy" }, default = "auto" },
  } },
  -- SIGTERM leaves running tasks running for the next daemon to reattach
  -- (keep), or stops them first (stop; they run again at the next start).
  shutdown = { type = "record", fields = {
    tasks = { type = "enum", values = { "keep", "stop" }, default = "keep" },
  } },
  -- Where tasks run: this machine (local: the sandbox above), or a Slurm
  -- cluster whose nodes share data_dir (slurm: each task a Slurm job; small
  -- tasks ready together share one allocation as srun steps).
  executor = { type = "record", fields = {
    backend = { type = "enum", values = { "local", "slurm" }, default = "local" },
    partition = { type = "string" },           -- nil: the cluster's default
    account = { type = "string" },
    bin = { type = "path" },                   -- folder of sbatch, squeue, ...
    conf = { type = "path" },                  -- SLURM_CONF for those commands
    sbatch_args = { type = "strings", default = {} },
    poll = { type = "duration", default = 1, positive = true },
    max_tasks = { type = "count", default = 1000, min = 1 },
    -- Run each task under jobrt-sandbox on its node (beside this binary, at
    -- the same path there), with the sandbox section's images and network.
    sandbox = { type = "boolean", default = false },
    batch = { type = "record", fields = {
      max_tasks = { type = "count", default = 50, min = 1 },
      width = { type = "count", default = 2, min = 1 },
      window = { type = "duration", default = 0.2 },
      max_cpu = { type = "cpu", default = 1000, positive = true },
      max_memory = { type = "bytes", default = 1 * GiB, positive = true },
    }, default = { max_tasks = 50, width = 2, window = 0.2, max_cpu = 1000,
                   max_memory = 1 * GiB } },
  } },
  users = { type = "users", default = {} },
  surfaces = { type = "surfaces" },
  plugins = { type = "plugins", default = {} },
  limits = { type = "record", fields = {
    max_body = { type = "bytes", default = 16 * MiB, positive = true },
    max_header = { type = "bytes", default = 16 * KiB, positive = true },
    max_connections = { type = "count", default = 1024, min = 1 },
    idle_timeout = { type = "duration", default = 60, positive = true },
    read_timeout = { type = "duration", default = 30, positive = true },
    shutdown_grace = { type = "duration", default = 30 },
    -- What one job may hold (the submission pipeline refuses more).
    title = { type = "bytes", default = 256, positive = true },
    description = { type = "bytes", default = 16 * KiB, positive = true },
    label_key = { type = "bytes", default = 63, positive = true },
    label_value = { type = "bytes", default = 256, positive = true },
    labels = { type = "count", default = 64, min = 1 },
    env = { type = "count", default = 128, min = 1 },
    env_value = { type = "bytes", default = 32 * KiB, positive = true },
    tasks = { type = "count", default = 1000, min = 1 },
    inline_input = { type = "bytes", default = 1 * MiB, positive = true },
    argv = { type = "count", default = 4096, min = 1 },
  } },
  lua = { type = "record", fields = {
    deadline = { type = "duration", default = 5, positive = true },
    memory = { type = "bytes", default = 64 * MiB, positive = true },
    state_memory = { type = "bytes", default = 1 * GiB, positive = true },
  } },
  log = { type = "record", fields = {
    level = { type = "enum", values = { "debug", "info", "warn", "error" }, default = "info" },
    -- text: "time level message"; json: one object per line with the
    -- request's fields (request_id, surface, principal, job, task).
    format = { type = "enum", values = { "text", "json" }, default = "text" },
  } },
  -- Prometheus metrics at /jobrt/metrics (the native surface): counted
  -- unless enabled is false; scraped by an admin or with the token.
  metrics = { type = "record", fields = {
    enabled = { type = "boolean", default = true },
    token = { type = "scrape_token" },
  } },
}

local TOP_KEYS = sorted_keys(SCHEMA)

local function default_of(name, spec)
  if name == "listen" then return { parse_address(DEFAULT_LISTEN) } end
  if name == "surfaces" then return deep_copy(BUILTIN_SURFACES) end
  if spec.type == "record" then
    local out = {}
    for k, f in pairs(spec.fields) do out[k] = deep_copy(f.default) end
    return out
  end
  return deep_copy(spec.default)
end

local function by_line(list)
  table.sort(list, function(a, b)
    if (a.line or 0) ~= (b.line or 0) then return (a.line or 0) < (b.line or 0) end
    if a.key ~= b.key then return a.key < b.key end
    return a.message < b.message
  end)
  return list
end

-- store.url goes with backend postgres, and is a PostgreSQL URL.
local function check_store(c, cfg, doc)
  local st = cfg.store
  local at = type(doc) == "table" and type(doc.store) == "table" and doc.store or nil
  local line = type(doc) == "table" and c:line(doc, "store", 1) or 1
  local url_line = at and at.url ~= nil and c:line(at, "url", line) or line
  if st.backend == "postgres" then
    if st.url == nil then
      c:add("store.url", line, 'backend postgres needs a url ("postgresql://user@host:port/dbname")')
    elseif not (st.url:match("^postgresql://") or st.url:match("^postgres://")) then
      c:add("store.url", url_line, '"%s" is not a PostgreSQL URL (postgresql://user@host:port/dbname)', st.url)
    end
  elseif st.url ~= nil then
    c:add("store.url", url_line, "a url is for backend postgres (backend is %s)", st.backend)
  end
  if st.backend == "postgres" and st.heartbeat * 2 >= st.failover then
    c:add("store.failover", at and at.failover ~= nil and c:line(at, "failover", line) or line,
      "must be more than twice store.heartbeat (%gs)", st.heartbeat)
  end
  -- A dead instance's sandboxed tasks run on until their helpers give up on
  -- it (sandbox.orphan_timeout); only after that may another instance run
  -- them again, or one task would run twice at once.
  local sb = type(doc) == "table" and doc.sandbox
  local orphan = cfg.sandbox.orphan_timeout
  if st.backend == "postgres" and is_map(sb) and (orphan == 0 or orphan >= st.failover) then
    c:add("store.failover", at and at.failover ~= nil and c:line(at, "failover", line) or line,
      "must be more than sandbox.orphan_timeout (%s), so that a dead instance's tasks have"
      .. " stopped before another instance runs them again",
      orphan == 0 and "0, never" or string.format("%gs", orphan))
  end
end

-- The plugins Loader that checked a cfg's modules (config.loader).
local LOADERS = setmetatable({}, { __mode = "k" })

-- doc (from jobrt.yaml) -> cfg, warnings | nil, problems (errors and
-- warnings, by line). opts.deep: check the modules and the TLS files too.
local function normalise(doc, lines, file, opts)
  local c = new_check(file, lines)
  c.deep = not (opts and opts.deep == false)
  local cfg = {}
  for name, spec in pairs(SCHEMA) do cfg[name] = default_of(name, spec) end
  if not is_null(doc) and not is_map(doc) then
    c:add("", c:line(doc, 1, 1), "expected a mapping of settings, got %s", describe(doc))
    return nil, c.errors
  end
  for _, k in ipairs(is_null(doc) and {} or c:keys(doc)) do
    local spec, l = SCHEMA[k], c:line(doc, k, 1)
    if not spec then
      c:unknown("", k, l, TOP_KEYS)
    elseif not is_null(doc[k]) then
      local ok, value = T[spec.type](c, doc[k], k, l, spec)
      if ok then cfg[k] = value end
    end
  end
  if cfg.lua.memory > cfg.lua.state_memory then
    local lua_line = c:line(doc, "lua", 1)
    local at = type(doc.lua) == "table" and doc.lua.memory ~= nil
    c:add("lua.memory", at and c:line(doc.lua, "memory", lua_line) or lua_line,
      "the per-call cap (%d bytes) is larger than lua.state_memory (%d bytes)",
      cfg.lua.memory, cfg.lua.state_memory)
  end
  check_store(c, cfg, doc)
  if cfg.executor.backend == "slurm" then
    local at = type(doc) == "table" and doc or {}
    if at.node ~= nil and not is_null(at.node) then
      c:warn("node", c:line(doc, "node", 1), "not used with executor.backend slurm: Slurm"
        .. " allocates each task; executor.max_tasks bounds how many jobrt keeps in Slurm")
    end
    if #cfg.sandbox.require > 0 then
      c:add("sandbox.require", c:line(doc, "sandbox", 1), "the slurm executor cannot check"
        .. " the layers of the cluster's nodes from here; remove sandbox.require (with"
        .. " executor.sandbox each node's helper builds what the node allows)")
    end
  end
  -- Even a file with mistakes has its modules checked, so one run lists
  -- every problem.
  local loader = c.deep and modules.check(c, cfg, doc) or nil
  if #c.errors > 0 then
    for _, w in ipairs(c.warnings) do c.errors[#c.errors + 1] = w end
    return nil, by_line(c.errors)
  end
  LOADERS[cfg] = loader
  return cfg, by_line(c.warnings)
end

-- "NAME:LINE: message" from jobrt.yaml -> one error record.
local function yaml_error(name, msg)
  local rest = msg
  if msg:sub(1, #name + 1) == name .. ":" then rest = msg:sub(#name + 2) end
  local line, message = rest:match("^(%d+): (.*)$")
  if line then return { file = name, line = tonumber(line), key = "", message = message } end
  return { file = name, key = "", message = (rest:gsub("^%s+", "")) }
end

---------------------------------------------------------------------------
-- API

--- config.load(path[, opts]) -> cfg, warnings | nil, problems
-- Problems are {file, line, key, message[, warning = true]}, by line: every
-- error of the file and its modules, and the warnings. opts.deep = false
-- checks the file alone (no module loaded, no TLS file read).
function M.load(path, opts)
  local doc, lines = yaml.load_file(path)
  if doc == nil then return nil, { yaml_error(path, lines) } end
  return normalise(doc, lines, path, opts)
end

--- config.from_string(text [, name[, opts]]) -> as load
function M.from_string(text, name, opts)
  name = name or "<string>"
  local doc, lines = yaml.load_string(text, name)
  if doc == nil then return nil, { yaml_error(name, lines) } end
  return normalise(doc, lines, name, opts)
end

--- config.default() -> the configuration of a deployment without a file.
function M.default()
  return (normalise(NULL, {}, "<default>"))
end

--- config.loader(cfg) -> the jobrt.plugins Loader for cfg's modules: the
-- one whose deep pass loaded them and checked their options (so mounting
-- does neither again), or a fresh one for a cfg checked without modules.
function M.loader(cfg)
  return LOADERS[cfg] or require("jobrt.plugins").new({
    lua_path = cfg.lua_path, deadline = cfg.lua.deadline, memory = cfg.lua.memory,
  })
end

--- config.format_errors(problems) -> { "FILE:LINE: key: message", ... };
-- a warning reads "FILE:LINE: warning: key: message".
function M.format_errors(errors)
  local out = {}
  for _, e in ipairs(errors) do
    local where = e.file or "<config>"
    if e.line then where = where .. ":" .. e.line end
    local key = (e.key and e.key ~= "") and (e.key .. ": ") or ""
    out[#out + 1] = where .. ": " .. (e.warning and "warning: " or "") .. key .. e.message
  end
  return out
end

--- config.apply_overrides(cfg, {listen = "ADDR:PORT", data_dir = "DIR"})
-- -> cfg (changed in place) | nil, "--flag: message" (cfg then unchanged).
-- --listen replaces the plain listeners only: the file's TLS listeners
-- stay, and an address one of them has is refused.
function M.apply_overrides(cfg, o)
  o = o or {}
  local listener
  if o.listen ~= nil then
    if type(o.listen) ~= "string" then return nil, "--listen: expected ADDR:PORT" end
    local err
    listener, err = parse_address(o.listen)
    if not listener then return nil, "--listen: " .. err end
  end
  if o.data_dir ~= nil and (type(o.data_dir) ~= "string" or o.data_dir == "") then
    return nil, "--data-dir: expected a folder"
  end
  if listener then
    local kept = {}
    for _, l in ipairs(cfg.listen) do
      if l.tls then
        if l.address == listener.address then
          return nil, "--listen: " .. l.address .. " is a TLS listener of the deployment file;"
            .. " --listen replaces only the plain listeners"
        end
        kept[#kept + 1] = l
      end
    end
    table.insert(kept, 1, listener)
    cfg.listen = kept
  end
  if o.data_dir ~= nil then cfg.data_dir = o.data_dir end
  return cfg
end

return M
