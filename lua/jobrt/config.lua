-- The deployment file: its schema, defaults and validation. A file states only
-- what differs from the defaults; every problem in it is reported, each as
-- {file, line, key, message}, so `jobrt check` can list them all at once.
local yaml = require("jobrt.yaml")
local S = require("jobrt.schema")

local M = {}

local NULL = yaml.null

-- The surfaces the runtime ships, with their default mount and module. A
-- deployment may name these without "module"; adding one is one line here.
local BUILTIN_SURFACES = {
  native = { mount = "/jobrt/v1", module = "api.native" },
  openeo = { mount = "/openeo/1.2", module = "api.openeo" },
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

---------------------------------------------------------------------------
-- Helpers (shared with the modules' option schemas)

local is_null, is_map, is_seq = S.is_null, S.is_map, S.is_seq
local describe, deep_copy, join = S.describe, S.deep_copy, S.join
local suggest, sorted_keys, new_check = S.suggest, S.sorted_keys, S.new_check

---------------------------------------------------------------------------
-- Value checkers: f(c, v, path, line, spec) -> ok, normalised value. They are
-- called only for non-null values; null means "the default".

local T = {}

function T.string(c, v, path, line)
  if type(v) ~= "string" then c:type_error(path, line, "a string", v) return false end
  if v == "" then c:add(path, line, "must not be empty") return false end
  return true, v
end

function T.boolean(c, v, path, line)
  if type(v) ~= "boolean" then c:type_error(path, line, "true or false", v) return false end
  return true, v
end

function T.count(c, v, path, line, spec)
  local n = type(v) == "number" and math.tointeger(v)
  if not n then c:type_error(path, line, "a whole number", v) return false end
  local min = spec.min or 0
  if n < 0 and min == 0 then c:add(path, line, "must not be negative") return false end
  if n < min then c:add(path, line, "must be at least %d", min) return false end
  return true, n
end

-- Sizes, CPU and durations read as the modules' option schemas read them.
local function unit_value(c, v, path, line, spec) return S.check(c, spec, v, path, line) end
T.bytes, T.cpu, T.duration = unit_value, unit_value, unit_value

function T.enum(c, v, path, line, spec)
  for _, allowed in ipairs(spec.values) do
    if v == allowed then return true, v end
  end
  local list = '"' .. table.concat(spec.values, '", "') .. '"'
  if type(v) == "string" then
    local guess = suggest(v, spec.values)
    if guess then
      c:add(path, line, 'unknown value "%s" (did you mean "%s"?)', v, guess)
      return false
    end
  end
  c:add(path, line, "expected one of %s, got %s", list, describe(v))
  return false
end

-- A list of strings; a single string is a list of one.
function T.strings(c, v, path, line, spec)
  if type(v) == "string" then v = { v } end
  if not is_seq(v) then c:type_error(path, line, "a list of strings", v) return false end
  local out, ok = {}, true
  for i, item in ipairs(v) do
    local p, l = join(path, i), c:line(v, i, line)
    local good, s = T.string(c, item, p, l)
    if good and spec.each then good, s = spec.each(c, s, p, l) end
    if good then out[#out + 1] = s else ok = false end
  end
  return ok, out
end

-- An `each` checker for names from a fixed list: "unknown role "x"" with
-- the closest name, or the list when none is close.
local function known(what, names)
  return function(c, s, path, line)
    for _, name in ipairs(names) do
      if s == name then return true, s end
    end
    local guess = suggest(s, names)
    c:add(path, line, 'unknown %s "%s" (%s)', what, s,
      guess and string.format('did you mean "%s"?', guess) or ("known: " .. table.concat(names, ", ")))
    return false
  end
end

local function absolute_path(c, s, path, line)
  if s:sub(1, 1) ~= "/" then
    c:add(path, line, 'must be an absolute path, got "%s"', s)
    return false
  end
  return true, s
end

local function module_name(c, s, path, line)
  for part in (s .. "."):gmatch("([^.]*)%.") do
    if not part:find("^[%a_][%w_]*$") then
      c:add(path, line, 'not a Lua module name: "%s" (expected e.g. "site.reports")', s)
      return false
    end
  end
  return true, s
end

-- A record: a mapping whose keys are fixed by fields {name = spec}. Returns
-- its defaults overlaid with the valid values found.
local function record(c, v, path, line, fields)
  local out = {}
  for name, spec in pairs(fields) do out[name] = deep_copy(spec.default) end
  if is_null(v) or not c:mapping(path, line, v) then return out end
  local names = sorted_keys(fields)
  for _, k in ipairs(c:keys(v)) do
    local spec, p, l = fields[k], join(path, k), c:line(v, k, line)
    if not spec then
      c:unknown(path, k, l, names)
    elseif not is_null(v[k]) then
      local ok, value = T[spec.type](c, v[k], p, l, spec)
      if ok then out[k] = value end
    end
  end
  return out
end

---------------------------------------------------------------------------
-- listen

local function ipv4(h)
  local parts = { h:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #parts ~= 4 then return false end
  for _, p in ipairs(parts) do
    if #p > 1 and p:sub(1, 1) == "0" or tonumber(p) > 255 then return false end
  end
  return true
end

-- How many 16-bit groups a run like "1:2:a.b.c.d" holds, nil if malformed.
local function v6_groups(s, may_end_in_v4)
  if s == "" then return 0 end
  local n, parts = 0, {}
  for g in (s .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = g end
  for i, g in ipairs(parts) do
    if i == #parts and may_end_in_v4 and g:find("%.") then
      if not ipv4(g) then return nil end
      n = n + 2
    elseif g:find("^%x%x?%x?%x?$") then
      n = n + 1
    else
      return nil
    end
  end
  return n
end

local function ipv6(h)
  if h:find("[^%x:%.]") then return false end
  local head, tail = h:match("^(.-)::(.*)$")
  if not head then return v6_groups(h, true) == 8 end
  if tail:find("::", 1, true) then return false end
  local a, b = v6_groups(head, false), v6_groups(tail, true)
  return a ~= nil and b ~= nil and a + b <= 7
end

-- "ADDR:PORT" -> {host=, port=, address=} | nil, reason
local function parse_address(s)
  local host, port = s:match("^%[(.*)%]:(%d+)$")
  local v6 = host ~= nil
  if not host then
    if s:find("^%[") then return nil, string.format('"%s" is not "[IPv6]:PORT"', s) end
    host, port = s:match("^([^:]*):(%d+)$")
  end
  if not host then
    if select(2, s:gsub(":", "")) > 1 and not s:find("%[") then
      return nil, string.format('"%s": put IPv6 addresses in brackets, e.g. "[::1]:8080"', s)
    end
    if not s:find(":") then
      return nil, string.format('"%s" has no port (expected ADDR:PORT, e.g. "127.0.0.1:8080")', s)
    end
    return nil, string.format('"%s" is not ADDR:PORT (e.g. "127.0.0.1:8080")', s)
  end
  local p = tonumber(port)
  if #port > 5 or p > 65535 then
    return nil, string.format('"%s": port %s is out of range (0-65535)', s, port)
  end
  if v6 then
    if not ipv6(host) then return nil, string.format('"%s": "%s" is not an IPv6 address', s, host) end
    return { host = host, port = p, address = "[" .. host .. "]:" .. p }
  end
  if host == "" then
    return nil, string.format('"%s" has no address (use "0.0.0.0:%s" for every interface)', s, port)
  end
  if host ~= "localhost" and not ipv4(host) then
    return nil, string.format('"%s": "%s" is not an IPv4 address, [IPv6] or localhost', s, host)
  end
  return { host = host, port = p, address = host .. ":" .. p }
end

local TLS_FIELDS = {
  cert = { type = "string" },
  key = { type = "string" },
  client_ca = { type = "string" },
  require_client_cert = { type = "boolean", default = false },
}

local PEM_WANTS = {
  cert = { label = "^CERTIFICATE$", what = "a PEM certificate" },
  client_ca = { label = "^CERTIFICATE$", what = "PEM CA certificates" },
  key = { label = "PRIVATE KEY$", what = "a PEM private key" },
}

-- A TLS file (cert, key, client_ca) must be readable and hold PEM blocks of
-- its kind; an encrypted key is refused here, as OpenSSL would ask for its
-- pass phrase on the terminal. -> true when worth handing to OpenSSL.
-- Paths are taken from where jobrt starts, as the listener reads them.
local function check_pem(c, file, key, path, line)
  local want = PEM_WANTS[key]
  local f, err = io.open(file, "rb")
  if not f then
    c:add(path, line, "cannot read the %s file: %s", key, err)
    return false
  end
  local text = f:read("a") or ""
  f:close()
  local found = false
  for label, body in text:gmatch("%-%-%-%-%-BEGIN ([%w ]+)%-%-%-%-%-(.-)%-%-%-%-%-END %1%-%-%-%-%-") do
    if label:find(want.label) then
      if label:find("ENCRYPTED") or body:find("Proc%-Type:") then
        c:add(path, line, '"%s" does not parse: the key is encrypted (jobrt reads unencrypted keys only)', file)
        return false
      end
      found = true
    end
  end
  if not found then
    c:add(path, line, '"%s" does not parse: expected %s ("-----BEGIN ...-----")', file, want.what)
  end
  return found
end

-- Which file an OpenSSL refusal (runtime/http/tls.c's words) is about.
local TLS_REFUSALS = {
  { "^cannot load certificate", "cert" },
  { "^cannot load private key", "key" },
  { "^private key does not match", "key" },
  { "^cannot load client CA", "client_ca" },
}

-- The files as a listener loads them: the TLS context built for real, so a
-- block that does not decode, a key that does not match the certificate or
-- a CA bundle that does not load is reported before serving.
local function check_tls_files(c, v, tls, path, line)
  local ok, msg = require("jobrt.http").check_tls({ cert = tls.cert, key = tls.key, client_ca = tls.client_ca })
  if ok then return end
  for _, r in ipairs(TLS_REFUSALS) do
    if msg:find(r[1]) then
      c:add(join(path, r[2]), c:line(v, r[2], line), "%s", msg)
      return
    end
  end
  c:add(path, line, "%s", msg)
end

local function check_tls(c, v, path, line)
  if is_null(v) or v == false then return true, nil end
  if not c:mapping(path, line, v, "a mapping with cert and key") then return false end
  local before = #c.errors
  local tls = record(c, v, path, line, TLS_FIELDS)
  for _, k in ipairs({ "cert", "key" }) do
    if is_null(v[k]) then c:add(path, line, 'missing "%s" (a TLS listener needs cert and key)', k) end
  end
  if c.deep then
    local readable = true
    for _, k in ipairs({ "cert", "key", "client_ca" }) do
      if type(tls[k]) == "string" then
        readable = check_pem(c, tls[k], k, join(path, k), c:line(v, k, line)) and readable
      end
    end
    if readable and #c.errors == before then check_tls_files(c, v, tls, path, line) end
  end
  if tls.require_client_cert and not tls.client_ca then
    c:add(join(path, "require_client_cert"), c:line(v, "require_client_cert", line),
      'needs "client_ca" (the CA that signs client certificates)')
  end
  return #c.errors == before, tls
end

local function check_listener(c, v, path, line)
  if type(v) == "string" then
    local l, err = parse_address(v)
    if not l then c:add(path, line, "%s", err) return false end
    return true, l
  end
  if not is_map(v) or next(v) == nil then
    local hint = is_seq(v) and ' (quote IPv6 addresses: "[::1]:8080")' or ""
    c:type_error(path, line, '"ADDR:PORT" or a mapping with address and tls' .. hint, v)
    return false
  end
  local ok, l = true, nil
  for _, k in ipairs(c:keys(v)) do
    if k ~= "address" and k ~= "tls" then
      c:unknown(path, k, c:line(v, k, line), { "address", "tls" })
      ok = false
    end
  end
  local apath, aline = join(path, "address"), c:line(v, "address", line)
  if is_null(v.address) then
    c:add(path, line, 'missing "address"')
    ok = false
  elseif type(v.address) ~= "string" then
    c:type_error(apath, aline, '"ADDR:PORT"', v.address)
    ok = false
  else
    local err
    l, err = parse_address(v.address)
    if not l then c:add(apath, aline, "%s", err) ok = false end
  end
  local good_tls, tls = check_tls(c, v.tls, join(path, "tls"), c:line(v, "tls", line))
  if l then l.tls = tls end
  return ok and good_tls, l
end

-- A list of listeners; one string or one mapping is a list of one, and
-- errors then name "listen" itself rather than "listen[1]".
local function check_listen(c, v, path, line)
  local list = v
  if type(v) == "string" or (is_map(v) and next(v) ~= nil) then list = { v } end
  if not is_seq(list) then c:type_error(path, line, 'a list of "ADDR:PORT"', v) return false end
  if #list == 0 then c:add(path, line, "needs at least one address") return false end
  local out, ok, seen = {}, true, {}
  for i, item in ipairs(list) do
    local p = list == v and join(path, i) or path
    local l = list == v and c:line(v, i, line) or line
    local good, listener = check_listener(c, item, p, l)
    if good and seen[listener.address] then
      c:add(p, l, "%s is listed twice (first as %s)", listener.address, seen[listener.address])
      good = false
    end
    if good then
      seen[listener.address] = p
      out[#out + 1] = listener
    end
    ok = ok and good
  end
  return ok, out
end

---------------------------------------------------------------------------
-- users, surfaces, plugins, sandbox images: mappings of named entries

-- The roles jobrt.auth and the surfaces act on: admin sees and changes
-- every job and approves held ones; user (what tokens and mTLS clients get)
-- sees its own.
local ROLES = { "admin", "user" }

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

T.listen = check_listen
T.users = check_users
T.surfaces = check_surfaces
T.plugins = check_plugins
T.images = check_images
T.record = function(c, v, path, line, spec) return true, record(c, v, path, line, spec.fields) end

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

---------------------------------------------------------------------------
-- Modules: each plugin's and surface's options against the schema its
-- module declares (run with c.deep, as `jobrt check` and start-up do).

-- Options every surface takes; jobrt.server reads them.
local SURFACE_FIELDS = {
  auth = { type = "list", allow_false = true,
    of = { type = "string", one_of = { "basic", "bearer", "token", "mtls" } } },
}

-- The plugins the binary carries, for suggestions.
local BUILTIN_PLUGINS = { "approve.image_allowlist", "approve.manual", "estimate.price_table", "publish.local" }

-- The module's schema, or nil after saying what is wrong with it.
local function schema_of(c, mod, module, path, line)
  local schema = type(mod) == "table" and mod.schema or nil
  if schema == nil then return {} end
  local ok, err = S.declared(schema)
  if not ok then
    c:add(path, line, "module %s declares a broken schema: %s", module, err)
    return nil
  end
  return schema
end

local function unknown_module(c, use, path, line, err)
  local guess = suggest(use, BUILTIN_PLUGINS)
  c:add(path, line, 'unknown plugin module "%s"%s', use,
    guess and string.format(' (did you mean "%s"?)', guess) or (": " .. err))
end

local function check_plugin_modules(c, cfg, doc, loader)
  local pdoc = is_map(doc.plugins) and doc.plugins or {}
  local pline = c:line(doc, "plugins", 1)
  for _, name in ipairs(c:keys(pdoc)) do
    local entry, x = cfg.plugins[name], pdoc[name]
    if entry then
      local p, l = join("plugins", name), c:line(pdoc, name, pline)
      local upath, uline = join(p, "use"), c:line(x, "use", l)
      local module, err = loader:resolve(entry.use)
      if not module then
        unknown_module(c, entry.use, upath, uline, err)
      else
        local mod, lerr = loader:load(module, "plugin " .. name, "plugin")
        if mod == nil then
          c:add(upath, uline, "%s", lerr)
        else
          local schema = schema_of(c, mod, module, upath, uline)
          if schema then S.record(c, schema, x, p, l, { use = true }) end
        end
      end
    end
  end
end

local function check_surface_modules(c, cfg, doc, loader)
  local sdoc = is_map(doc.surfaces) and doc.surfaces or {}
  local sline = c:line(doc, "surfaces", 1)
  for _, name in ipairs(sorted_keys(cfg.surfaces)) do
    local spec = cfg.surfaces[name]
    local x = is_map(sdoc[name]) and sdoc[name] or nil
    local p, l = join("surfaces", name), c:line(sdoc, name, sline)
    local mpath, mline = join(p, "module"), c:line(x, "module", l)
    local mod, err = loader:load(spec.module, "surface " .. name)
    if mod == nil then
      c:add(mpath, mline, "%s", err)
    elseif type(mod) ~= "table" then
      c:add(mpath, mline, "module %s must return a table (with a routes function)", spec.module)
    else
      local schema = schema_of(c, mod, spec.module, mpath, mline)
      if schema then
        local fields = {}
        for k, f in pairs(schema) do fields[k] = f end
        for k, f in pairs(SURFACE_FIELDS) do fields[k] = fields[k] or f end
        local out = S.record(c, fields, x, p, l, { module = true, mount = true })
        out.module, out.mount = spec.module, spec.mount
        cfg.surfaces[name] = out
      end
    end
  end
end

local function check_modules(c, cfg, doc)
  local loader = require("jobrt.plugins").new({
    lua_path = cfg.lua_path, deadline = cfg.lua.deadline, memory = cfg.lua.memory,
  })
  doc = is_map(doc) and doc or {}
  check_plugin_modules(c, cfg, doc, loader)
  -- Plugins the surfaces name (approval, estimators, ...): each must exist;
  -- those nobody names are worth a warning.
  local used = {}
  local names = sorted_keys(cfg.plugins)
  c.plugin_ref = function(name, path, line)
    if cfg.plugins[name] then
      used[name] = true
      return true
    end
    if loader:resolve(name) then return true end
    local guess = suggest(name, names)
    c:add(path, line, 'unknown plugin "%s" (%s)', name, guess and string.format('did you mean "%s"?', guess)
      or "not in plugins, nor a plugin module")
    return false
  end
  check_surface_modules(c, cfg, doc, loader)
  c.plugin_ref = nil
  local pdoc = is_map(doc.plugins) and doc.plugins or {}
  for _, name in ipairs(names) do
    if not used[name] then
      c:warn(join("plugins", name), c:line(pdoc, name, c:line(doc, "plugins", 1)),
        "no surface names this plugin (it is never loaded)")
    end
  end
end

local function by_line(list)
  table.sort(list, function(a, b)
    if (a.line or 0) ~= (b.line or 0) then return (a.line or 0) < (b.line or 0) end
    if a.key ~= b.key then return a.key < b.key end
    return a.message < b.message
  end)
  return list
end

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
  -- Even a file with mistakes has its modules checked, so one run lists
  -- every problem.
  if c.deep then check_modules(c, cfg, doc) end
  if #c.errors > 0 then
    for _, w in ipairs(c.warnings) do c.errors[#c.errors + 1] = w end
    return nil, by_line(c.errors)
  end
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
