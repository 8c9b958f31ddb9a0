-- jobrt.config (and the jobrt.yaml binding under it): defaults, normalising a
-- full deployment, and every kind of mistake reported with FILE:LINE: key.
local config = require("jobrt.config")
local yaml = require("jobrt.yaml")

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FIXTURES = here .. "../fixtures/config/"

local PLUGINS = here .. "../fixtures/plugins"
-- The file alone (no module loaded, no TLS file read) unless told otherwise.
local SHALLOW = { deep = false }

-- The formatted errors of a text, or {} when it is valid.
local function errors_of(text, opts)
  local cfg, errs = config.from_string(text, "t.yaml", opts or SHALLOW)
  if cfg then return {} end
  return config.format_errors(errs)
end

-- Every problem, warnings included, valid or not.
local function problems_of(text)
  local _, list = config.from_string(text, "t.yaml")
  return config.format_errors(list)
end

local function valid(t, text, opts)
  local cfg, errs = config.from_string(text, "t.yaml", opts or SHALLOW)
  if not cfg then t.eq(config.format_errors(errs), {}, "errors") end
  return cfg or config.default()
end

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  return dir
end

return {
  { "yaml: documents and their lines", function(t)
    local doc, lines = yaml.load_string("a:\n  b: [1, x, ~]\n  c:\n    - {d: 1.5}\n", "n.yaml")
    t.eq(doc, { a = { b = { 1, "x", yaml.null }, c = { { d = 1.5 } } } })
    t.eq(math.type(doc.a.b[1]), "integer")
    t.eq(lines[doc], { line = 1, keys = { a = 1 } })
    t.eq(lines[doc.a], { line = 2, keys = { b = 2, c = 3 } })
    t.eq(lines[doc.a.b], { line = 2, keys = { 2, 2, 2 } })
    t.eq(lines[doc.a.c], { line = 4, keys = { 4 } })
    t.eq(lines[doc.a.c[1]], { line = 4, keys = { d = 4 } })
    t.eq(yaml.null, require("cjson").null)
    local empty, empty_lines = yaml.load_string("# nothing\n")
    t.eq(empty, yaml.null)
    t.eq(empty_lines, {})
  end },

  { "yaml: errors", function(t)
    local function err(text) return select(2, yaml.load_string(text, "n.yaml")) end
    t.eq(err("a: 1\na: 2\n"), 'n.yaml:2: duplicate key "a" (first at line 1)')
    t.eq(err("a: [1\nb: 2\n"), "n.yaml:2: did not find expected ',' or ']' (while parsing a flow sequence at line 1)")
    t.eq(err("a: 1\n---\nb: 1\n"), "n.yaml:2: only one YAML document is allowed, a second one starts here")
    t.eq(err("a: &x 1\n"), "n.yaml:1: anchors (&x) are not supported")
    t.eq(err("a: !!bool maybe\n"), 'n.yaml:1: not a valid !!bool: "maybe"')
    t.eq(err("a: 99999999999999999999\n"), "n.yaml:1: integer out of range: 99999999999999999999")
    t.eq(err("a: [\n"), "n.yaml:1: did not find expected node content (while parsing a flow node)")
    t.eq(select(2, yaml.load_string("a: *b")), "<string>:1: aliases (*b) are not supported")
    t.eq(select(2, yaml.load_file(FIXTURES .. "missing.yaml")),
      FIXTURES .. "missing.yaml: No such file or directory")
    t.err(function() yaml.load_string({}) end, "string expected")
  end },

  { "default() is every key's default", function(t)
    local cfg = config.default()
    t.eq(cfg, {
      listen = { { host = "127.0.0.1", port = 8080, address = "127.0.0.1:8080" } },
      data_dir = "./jobrt-data",
      lua_path = {},
      node = { gpu = 0, max_tasks = 16 },
      sandbox = { network = "none", require = {}, images = { host = "/" }, allow_host_paths = {},
                  orphan_timeout = 600 },
      shutdown = { tasks = "keep" },
      store = { backend = "sqlite", timeout = 10, heartbeat = 2, failover = 900 },
      executor = { backend = "local", sbatch_args = {}, poll = 1, max_tasks = 1000, sandbox = false,
        batch = { max_tasks = 50, width = 2, window = 0.2, max_cpu = 1000, max_memory = 1 << 30 } },
      images = { pull = "never", registries = {}, max_image_size = 0, max_store_size = 0, root = "auto" },
      users = {},
      -- Surface options as their modules' schemas fill them in.
      surfaces = {
        native = { mount = "/jobrt/v1", module = "api.native", approval = {} },
        openeo = { mount = "/openeo/1.2", module = "api.openeo", approval = {},
          estimator = "estimate.price_table", publisher = "publish.local",
          job_timeout = 600, sync_timeout = 3, task_cpu = 1000, task_memory = 1 << 30,
          backend_version = "jobrt", id = "jobrt-openeo", title = "jobrt openEO back-end",
          collections = {} },
        bacalhau = { mount = "/requester", module = "api.bacalhau", approval = {}, approvers = {},
          publishers = { ["local"] = "publish.local" }, task_cpu = 500, task_memory = 1 << 30,
          task_timeout = 1800, node_id = "jobrt", node_labels = {} },
        kuscia = { mount = "/api/v1/job", module = "api.kuscia", approval = {}, tokens = {}, domains = {},
          app_images = {}, client_cert = false },
      },
      plugins = {},
      limits = { max_body = 16 << 20, max_header = 16 << 10, max_connections = 1024,
                 idle_timeout = 60, read_timeout = 30, shutdown_grace = 30,
                 title = 256, description = 16 << 10, label_key = 63, label_value = 256,
                 labels = 64, env = 128, env_value = 32 << 10, tasks = 1000,
                 inline_input = 1 << 20, argv = 4096 },
      lua = { deadline = 5, memory = 64 << 20, state_memory = 1 << 30 },
      log = { level = "info", format = "text" },
      metrics = { enabled = true },
    })
    -- Each call is a fresh copy: apply_overrides changes it in place.
    config.default().surfaces.native.mount = "/changed"
    t.eq(config.default().surfaces.native.mount, "/jobrt/v1")
    local deep = {}
    t.eq(valid(t, "", deep), config.default())
    t.eq(valid(t, "# only a comment\n", deep), config.default())
    t.eq(valid(t, "node:\nlimits: ~\n", deep), config.default())
  end },

  { "a full deployment normalises", function(t)
    local cfg, warnings = config.load(FIXTURES .. "full.yaml", SHALLOW)
    t.eq(warnings, {})
    t.eq(cfg.listen, {
      { host = "127.0.0.1", port = 8080, address = "127.0.0.1:8080" },
      { host = "0.0.0.0", port = 8443, address = "0.0.0.0:8443",
        tls = { cert = "certs/server.crt", key = "certs/server.key",
                client_ca = "certs/ca.crt", require_client_cert = true } },
      { host = "::1", port = 9090, address = "[::1]:9090" },
    })
    t.eq(cfg.lua_path, { "./site-lua" })
    t.eq(cfg.node, { cpu = 2000, memory = 4 << 30, gpu = 0, max_tasks = 16 })
    t.eq(cfg.sandbox, { network = "none", require = { "userns", "seccomp" },
      images = { host = "/", alpine = "/srv/images/alpine" }, allow_host_paths = {},
      orphan_timeout = 600 })
    t.eq(cfg.users, {
      alice = { password_hash = "scrypt$...", roles = { "user" } },
      ops = { password = "dev-only", roles = { "admin" } },
    })
    t.eq(cfg.surfaces, {
      native = { mount = "/jobrt/v1", module = "api.native" },
      openeo = { mount = "/openeo/1.2", module = "api.openeo" },
      bacalhau = { mount = "/requester", module = "api.bacalhau" },
      kuscia = { mount = "/api/v1/job", module = "api.kuscia" },
      custom = { module = "site.reports", mount = "/reports", title = "Reports" },
    })
    t.eq(cfg.plugins, {
      images = { use = "approve.image_allowlist", images = { "ubuntu*", "alpine" } },
      prices = { use = "estimate.price_table", currency = "EUR", cpu_second = 0.0001 },
      ["local"] = { use = "publish.local", url_ttl = "1h" },
    })
    t.eq(cfg.limits, { max_body = 1 << 20, max_header = 16 << 10, max_connections = 1024,
                       idle_timeout = 120, read_timeout = 10, shutdown_grace = 30,
                       title = 1024, description = 16 << 10, label_key = 63, label_value = 256,
                       labels = 10, env = 128, env_value = 32 << 10, tasks = 50,
                       inline_input = 64 << 10, argv = 4096 })
    t.eq(cfg.lua, { deadline = 0.25, memory = 32 << 20, state_memory = 1 << 30 })
    t.eq(cfg.log, { level = "debug", format = "text" })
  end },

  { "every problem of a broken file, by line", function(t)
    local cfg, errs = config.load(FIXTURES .. "broken.yaml", SHALLOW)
    t.eq(cfg, nil)
    local F = FIXTURES .. "broken.yaml:"
    t.eq(config.format_errors(errs), {
      F .. '4: listen[1]: "127.0.0.1:80800": port 80800 is out of range (0-65535)',
      F .. '6: listen[2].tls: missing "key" (a TLS listener needs cert and key)',
      F .. '6: listen[2].tls.require_client_cert: needs "client_ca" (the CA that signs client certificates)',
      F .. '7: listen[3]: "localhost" has no port (expected ADDR:PORT, e.g. "127.0.0.1:8080")',
      F .. '8: listen[4]: "::1:8080": put IPv6 addresses in brackets, e.g. "[::1]:8080"',
      F .. '10: listen[6]: 127.0.0.1:8081 is listed twice (first as listen[5])',
      F .. '11: listen[7]: missing "address"',
      F .. '11: listen[7].adress: unknown key (did you mean "address"?)',
      F .. '12: nodes: unknown key (did you mean "node"?)',
      F .. '14: node.cpu: must be more than 0',
      F .. '15: node.memory: invalid size "4XB": unknown unit "XB" (use B, k, M, G, T, P, Ki, Mi, Gi, Ti or Pi)',
      F .. '16: node.gpu: must not be negative',
      F .. '17: node.max_task: unknown key (did you mean "max_tasks"?)',
      F .. '19: sandbox.network: unknown value "nnoe" (did you mean "none"?)',
      F .. '20: sandbox.require[2]: unknown sandbox layer "secomp" (did you mean "seccomp"?)',
      F .. '21: sandbox.images.alpine: must be an absolute path, got "srv/alpine"',
      F .. '23: users.alice: give "password_hash" or "password", not both',
      F .. '24: users.bob: missing "password_hash" (or "password")',
      F .. '26: surfaces.nativ: unknown surface (did you mean "native"?): a surface of your own needs "module" (built in: bacalhau, kuscia, native, openeo)',
      F .. '27: surfaces.custom.mount: must not end with "/", got "/reports/"',
      F .. '28: surfaces.two.mount: "/jobrt/v1" is already the mount of surfaces.native',
      F .. '30: plugins.images: missing "use" (the plugin module, e.g. "approve.image_allowlist")',
      F .. '32: limits.idle_timeout: invalid duration "5x": unknown unit "x" (use ms, s, m, h or d)',
      F .. '32: limits.max_body: must be more than 0',
      F .. '33: lua.memory: the per-call cap (2147483648 bytes) is larger than lua.state_memory (1073741824 bytes)',
      F .. '34: log.level: expected one of "debug", "info", "warn", "error", got a string ("verbose")',
    })
    t.eq(errs[1], { file = FIXTURES .. "broken.yaml", line = 4, key = "listen[1]",
      message = '"127.0.0.1:80800": port 80800 is out of range (0-65535)' })
  end },

  { "YAML syntax errors and unreadable files", function(t)
    local cfg, errs = config.load(FIXTURES .. "syntax.yaml")
    local _
    t.eq(cfg, nil)
    t.eq(errs, { { file = FIXTURES .. "syntax.yaml", line = 5, key = "",
      message = "mapping values are not allowed in this context" } })
    t.eq(config.format_errors(errs), { FIXTURES .. "syntax.yaml:5: mapping values are not allowed in this context" })
    _, errs = config.load(FIXTURES .. "duplicate.yaml")
    t.eq(config.format_errors(errs), { FIXTURES .. 'duplicate.yaml:4: duplicate key "node" (first at line 1)' })
    _, errs = config.load(FIXTURES .. "missing.yaml")
    t.eq(errs, { { file = FIXTURES .. "missing.yaml", key = "", message = "No such file or directory" } })
    t.eq(config.format_errors(errs), { FIXTURES .. "missing.yaml: No such file or directory" })
    t.eq(errors_of("listen:\n  - [::1]:8080\n"),
      { "t.yaml:2: did not find expected node content (while parsing a flow node)" })
    t.eq(errors_of("node:\n\tcpu: 2\n"),
      { "t.yaml:2: found character that cannot start any token (while scanning for the next token) (tabs cannot indent YAML)" })
  end },

  { "log format and metrics: values and every problem by line", function(t)
    local cfg = assert(config.from_string(
      "log: {format: json}\nmetrics:\n  enabled: false\n  token: 0123456789abcdef-xyz\n", "t.yaml", SHALLOW))
    t.eq(cfg.log, { level = "info", format = "json" })
    t.eq(cfg.metrics, { enabled = false, token = "0123456789abcdef-xyz" })
    t.eq(errors_of("log:\n  format: jsno\nmetrics:\n  enabled: 1\n  token: short\n  tokn: x\n"), {
      't.yaml:2: log.format: unknown value "jsno" (did you mean "json"?)',
      "t.yaml:4: metrics.enabled: expected true or false, got a number (1)",
      "t.yaml:5: metrics.token: must be at least 16 characters (e.g. the output of `openssl rand -hex 16`)",
      't.yaml:6: metrics.tokn: unknown key (did you mean "token"?)' })
    t.eq(errors_of('metrics: {token: "0123456789abcdef 0123"}\nlog: {format: [json]}\n'), {
      "t.yaml:1: metrics.token: may hold only letters, digits and -._~+/= (it is sent as a bearer token)",
      't.yaml:2: log.format: expected one of "text", "json", got a list' })
  end },

  { "top level and unknown keys", function(t)
    t.eq(errors_of("- a\n- b\n"), { "t.yaml:1: expected a mapping of settings, got a list" })
    t.eq(errors_of("just text\n"), { 't.yaml:1: expected a mapping of settings, got a string ("just text")' })
    t.eq(errors_of("zzz: 1\n"), {
      "t.yaml:1: zzz: unknown key (expected one of: data_dir, executor, images, limits, listen, log, lua, lua_path, metrics, node, plugins, sandbox, shutdown, store, surfaces, users)" })
    t.eq(errors_of("Node: {}\nlsiten: x\n"), {
      't.yaml:1: Node: unknown key (did you mean "node"?)',
      't.yaml:2: lsiten: unknown key (did you mean "listen"?)' })
    t.eq(errors_of("node: 4\nlimits: [1]\nlog: {}\n"), {
      "t.yaml:1: node: expected a mapping, got a number (4)",
      "t.yaml:2: limits: expected a mapping, got a list" })
    t.eq(errors_of("data_dir: 5\nlua_path: [a, 3, '']\n"), {
      "t.yaml:1: data_dir: expected a string, got a number (5)",
      "t.yaml:2: lua_path[2]: expected a string, got a number (3)",
      "t.yaml:2: lua_path[3]: must not be empty" })
    t.eq(errors_of("node:\n  max_tasks: 0\n  gpu: 1.5\nlimits:\n  max_connections: '10'\n"), {
      "t.yaml:2: node.max_tasks: must be at least 1",
      "t.yaml:3: node.gpu: expected a whole number, got a number (1.5)",
      't.yaml:5: limits.max_connections: expected a whole number, got a string ("10")' })
    t.eq(errors_of('users: {"a b": {password: x}}\nsandbox: {allow_host_paths: [data], images: [a]}\n'), {
      "t.yaml:1: users[\"a b\"]: user names may not be empty or hold ':', spaces or control characters",
      "t.yaml:2: sandbox.allow_host_paths[1]: must be an absolute path, got \"data\"",
      "t.yaml:2: sandbox.images: expected a mapping of image names to folders, got a list" })
    t.eq(errors_of("sandbox: {require: [cgroups, bogus], network: 3}\n"), {
      't.yaml:1: sandbox.network: expected one of "none", "full", "allow", got a number (3)',
      't.yaml:1: sandbox.require[1]: unknown sandbox layer "cgroups" (did you mean "cgroup"?)',
      't.yaml:1: sandbox.require[2]: unknown sandbox layer "bogus" (known: userns, mountns, pidns, ipcns, utsns, cgroupns, netns, pivot_root, no_new_privs, caps, seccomp, rlimits, cgroup, memory_limit, pids_limit, cpu_limit, cgroup_kill)' })
    -- what a restart does with running tasks, and how long a task may go
    -- without a daemon
    t.eq(errors_of("shutdown: {tasks: kill}\nsandbox: {orphan_timeout: soon}\n"), {
      't.yaml:1: shutdown.tasks: expected one of "keep", "stop", got a string ("kill")',
      't.yaml:2: sandbox.orphan_timeout: invalid duration "soon": expected seconds or parts such as "30s", "5m", "1h30m", "250ms"' })
    t.eq(errors_of("shutdown: {task: stop}\n"), {
      't.yaml:1: shutdown.task: unknown key (did you mean "tasks"?)' })
    local cfg = valid(t, "shutdown: {tasks: stop}\nsandbox: {orphan_timeout: 0}\n")
    t.eq(cfg.shutdown.tasks, "stop")
    t.eq(cfg.sandbox.orphan_timeout, 0)
    t.eq(valid(t, "sandbox: {orphan_timeout: 1h}\n").sandbox.orphan_timeout, 3600)
    t.eq(errors_of("users:\n  bob:\n    password: x\n    role: [admin]\n  eve:\n"), {
      't.yaml:4: users.bob.role: unknown key (did you mean "roles"?)',
      "t.yaml:5: users.eve: expected a mapping with password_hash or password, and roles, got null" })
  end },

  { "store: sqlite or a PostgreSQL url", function(t)
    local cfg = valid(t, 'store: {backend: postgres, url: "postgresql://jobrt@db:5432/jobs",'
      .. ' heartbeat: 1s, failover: 30s}\n')
    t.eq(cfg.store, { backend = "postgres", url = "postgresql://jobrt@db:5432/jobs", timeout = 10,
                      heartbeat = 1, failover = 30 })
    t.eq(errors_of("store: {backend: postgres}\n"), {
      't.yaml:1: store.url: backend postgres needs a url ("postgresql://user@host:port/dbname")' })
    t.eq(errors_of('store:\n  backend: mysql\n  url: "mysql://db"\n'), {
      't.yaml:2: store.backend: expected one of "sqlite", "postgres", got a string ("mysql")',
      't.yaml:3: store.url: a url is for backend postgres (backend is sqlite)' })
    t.eq(errors_of('store:\n  backend: postgres\n  url: "db:5432"\n  heartbeat: 10s\n  failover: 15s\n'), {
      't.yaml:3: store.url: "db:5432" is not a PostgreSQL URL (postgresql://user@host:port/dbname)',
      't.yaml:5: store.failover: must be more than twice store.heartbeat (10s)' })
    t.eq(errors_of('store:\n  backend: postgres\n  url: "postgresql://db/j"\n  failover: 5m\n'
      .. "sandbox:\n  orphan_timeout: 10m\n"), {
      "t.yaml:4: store.failover: must be more than sandbox.orphan_timeout (600s), so that a dead"
      .. " instance's tasks have stopped before another instance runs them again" })
    t.eq(errors_of('store: {backend: postgres, url: "postgresql://db/j"}\nsandbox: {orphan_timeout: 0}\n'), {
      "t.yaml:1: store.failover: must be more than sandbox.orphan_timeout (0, never), so that a dead"
      .. " instance's tasks have stopped before another instance runs them again" })
    valid(t, 'store: {backend: postgres, url: "postgresql://db/j", failover: 20m}\nsandbox: {orphan_timeout: 10m}\n')
    t.eq(errors_of("store: {timeout: 0, urls: x}\n"), {
      "t.yaml:1: store.timeout: must be more than 0",
      't.yaml:1: store.urls: unknown key (did you mean "url"?)' })
  end },

  { "listen forms", function(t)
    t.eq(valid(t, "listen: 0.0.0.0:80\n").listen, { { host = "0.0.0.0", port = 80, address = "0.0.0.0:80" } })
    t.eq(valid(t, "listen: {address: 'localhost:0'}\n").listen,
      { { host = "localhost", port = 0, address = "localhost:0" } })
    t.eq(valid(t, "listen: ['[2001:db8::1]:443', '[::ffff:192.0.2.1]:1', '[1:2:3:4:5:6:7:8]:2']\n").listen, {
      { host = "2001:db8::1", port = 443, address = "[2001:db8::1]:443" },
      { host = "::ffff:192.0.2.1", port = 1, address = "[::ffff:192.0.2.1]:1" },
      { host = "1:2:3:4:5:6:7:8", port = 2, address = "[1:2:3:4:5:6:7:8]:2" },
    })
    t.eq(valid(t, "listen:\n  - address: 127.0.0.1:1\n    tls: ~\n").listen,
      { { host = "127.0.0.1", port = 1, address = "127.0.0.1:1" } })
    t.eq(errors_of("listen: []\n"), { "t.yaml:1: listen: needs at least one address" })
    t.eq(errors_of("listen: 8080\n"), { 't.yaml:1: listen: expected a list of "ADDR:PORT", got a number (8080)' })
    t.eq(errors_of("listen: [':8080', 'example.com:80', '256.1.1.1:1', '01.2.3.4:5', '[::1::2]:3', '[1:2:3:4:5:6:7:8:9]:1', '[::1]', '1.2.3.4:-1']\n"), {
      't.yaml:1: listen[1]: ":8080" has no address (use "0.0.0.0:8080" for every interface)',
      't.yaml:1: listen[2]: "example.com:80": "example.com" is not an IPv4 address, [IPv6] or localhost',
      't.yaml:1: listen[3]: "256.1.1.1:1": "256.1.1.1" is not an IPv4 address, [IPv6] or localhost',
      't.yaml:1: listen[4]: "01.2.3.4:5": "01.2.3.4" is not an IPv4 address, [IPv6] or localhost',
      't.yaml:1: listen[5]: "[::1::2]:3": "::1::2" is not an IPv6 address',
      't.yaml:1: listen[6]: "[1:2:3:4:5:6:7:8:9]:1": "1:2:3:4:5:6:7:8:9" is not an IPv6 address',
      't.yaml:1: listen[7]: "[::1]" is not "[IPv6]:PORT"',
      't.yaml:1: listen[8]: "1.2.3.4:-1" is not ADDR:PORT (e.g. "127.0.0.1:8080")',
    })
    t.eq(errors_of("listen:\n  - [1, 2]\n  - address: {a: 1}\n    tls: {cert: a, key: b, ca: c}\n  - address: 1.2.3.4:5\n    tls: yes\n"), {
      't.yaml:2: listen[1]: expected "ADDR:PORT" or a mapping with address and tls (quote IPv6 addresses: "[::1]:8080"), got a list',
      't.yaml:3: listen[2].address: expected "ADDR:PORT", got a mapping',
      "t.yaml:4: listen[2].tls.ca: unknown key (expected one of: cert, client_ca, key, require_client_cert)",
      't.yaml:6: listen[3].tls: expected a mapping with cert and key, got a string ("yes")',
    })
  end },

  { "surfaces: defaults, unmounting, custom ones, mounts", function(t)
    local native = { mount = "/jobrt/v1", module = "api.native" }
    local openeo = { mount = "/openeo/1.2", module = "api.openeo" }
    local bacalhau = { mount = "/requester", module = "api.bacalhau" }
    local kuscia = { mount = "/api/v1/job", module = "api.kuscia" }
    local all = { native = native, openeo = openeo, bacalhau = bacalhau, kuscia = kuscia }
    t.eq(valid(t, "surfaces: {native: ~}\n").surfaces, all)
    t.eq(valid(t, "surfaces: {native: {}}\n").surfaces, all)
    t.eq(valid(t, "surfaces: {native: true}\n").surfaces, all)
    t.eq(valid(t, "surfaces: {native: false, openeo: false, bacalhau: false, kuscia: false}\n").surfaces, {})
    t.eq(valid(t, "surfaces:\n  native: {mount: /, extra: [1]}\n  openeo: false\n  bacalhau: false\n  kuscia: false\n  site: {module: site.api, mount: /}\n").surfaces, {
      native = { mount = "/", module = "api.native", extra = { 1 } },
      site = { module = "site.api", mount = "/" },
    })
    t.eq(errors_of("surfaces:\n  a: {module: x.a}\n  b: {mount: /b}\n  c: {module: 'x..c', mount: b}\n  d: {module: 5, mount: '/d?x'}\n  e: 3\n  f: {module: f, mount: /f//g}\n"), {
      't.yaml:2: surfaces.a: missing "mount" (e.g. "/a")',
      't.yaml:3: surfaces.b: unknown surface: a surface of your own needs "module" (built in: bacalhau, kuscia, native, openeo)',
      't.yaml:4: surfaces.c.module: not a Lua module name: "x..c" (expected e.g. "site.reports")',
      't.yaml:4: surfaces.c.mount: must start with "/", got "b"',
      "t.yaml:5: surfaces.d.module: expected a string, got a number (5)",
      't.yaml:5: surfaces.d.mount: not a plain path: "/d?x"',
      "t.yaml:6: surfaces.e: expected a mapping, or false to unmount it, got a number (3)",
      't.yaml:7: surfaces.f.mount: not a plain path: "/f//g"',
    })
    t.eq(errors_of("surfaces:\n  x: {module: m.x, mount: /same}\n  y: {module: m.y,\n      mount: /same}\n"), {
      't.yaml:4: surfaces.y.mount: "/same" is already the mount of surfaces.x' })
    t.eq(errors_of("surfaces: [native]\n"), { "t.yaml:1: surfaces: expected a mapping of surface names, got a list" })
  end },

  { "plugins keep their options", function(t)
    t.eq(valid(t, "plugins:\n  p: {use: approve.x, list: [a, ~], n: 1}\n").plugins,
      { p = { use = "approve.x", list = { "a", yaml.null }, n = 1 } })
    t.eq(errors_of("plugins:\n  a: {use: 'approve x'}\n  b: {use: 5}\n  c: [use]\n"), {
      't.yaml:2: plugins.a.use: not a Lua module name: "approve x" (expected e.g. "site.reports")',
      "t.yaml:3: plugins.b.use: expected a string, got a number (5)",
      't.yaml:4: plugins.c: expected a mapping with "use", got a list',
    })
  end },

  { "units in every section", function(t)
    local cfg = valid(t, "node: {cpu: 500m, memory: 512MB}\nlimits: {max_header: 8k, shutdown_grace: 0}\nlua: {state_memory: 2GiB, deadline: 1}\n")
    t.eq(cfg.node.cpu, 500)
    t.eq(cfg.node.memory, 512000000)
    t.eq(cfg.limits.max_header, 8000)
    t.eq(cfg.limits.shutdown_grace, 0)
    t.eq(cfg.lua.state_memory, 2 << 30)
    t.eq(errors_of("lua: {deadline: 0}\nlimits:\n  read_timeout: 1x\nnode: {cpu: '1.2345'}\n"), {
      "t.yaml:1: lua.deadline: must be more than 0",
      't.yaml:3: limits.read_timeout: invalid duration "1x": unknown unit "x" (use ms, s, m, h or d)',
      't.yaml:4: node.cpu: invalid cpu "1.2345": finer than a millicore (1m)',
    })
    t.eq(errors_of("lua:\n  state_memory: 1MiB\n"), {
      "t.yaml:1: lua.memory: the per-call cap (67108864 bytes) is larger than lua.state_memory (1048576 bytes)" })
  end },

  { "apply_overrides", function(t)
    local cfg = config.default()
    t.eq(config.apply_overrides(cfg, { listen = "[::1]:9999", data_dir = "/tmp/d" }), cfg)
    t.eq(cfg.listen, { { host = "::1", port = 9999, address = "[::1]:9999" } })
    t.eq(cfg.data_dir, "/tmp/d")
    t.eq(config.apply_overrides(cfg, {}), cfg)
    t.eq({ config.apply_overrides(cfg, { listen = "nope", data_dir = "/x" }) },
      { nil, '--listen: "nope" has no port (expected ADDR:PORT, e.g. "127.0.0.1:8080")' })
    t.eq(cfg.data_dir, "/tmp/d", "unchanged on error")
    t.eq({ config.apply_overrides(cfg, { data_dir = "" }) }, { nil, "--data-dir: expected a folder" })
  end },

  { "format_errors", function(t)
    t.eq(config.format_errors({
      { file = "f.yaml", line = 3, key = "node.memory", message = "bad" },
      { file = "f.yaml", line = 1, key = "", message = "syntax" },
      { file = "f.yaml", key = "", message = "unreadable" },
    }), { "f.yaml:3: node.memory: bad", "f.yaml:1: syntax", "f.yaml: unreadable" })
  end },

  { "module options: every problem of plugins and surfaces at once, by line", function(t)
    local text = table.concat({
      "lua_path: [" .. PLUGINS .. "]",                                  -- 1
      "plugins:",                                                       -- 2
      "  prices: {use: estimate.price_table, cpu_second: abc,",         -- 3
      "           curency: EUR}",                                       -- 4
      "  review: {use: approve.manul}",                                 -- 5
      "  mine: {use: site.nothing}",                                    -- 6
      "  opts:",                                                        -- 7
      "    use: site.options",                                          -- 8
      "    count: 0",                                                   -- 9
      "    mode: fats",                                                 -- 10
      "    tags: [a, 2]",                                               -- 11
      "    every: soon",                                                -- 12
      "  spare: {use: approve.manual}",                                 -- 13
      "  core: {use: site.uses_core}",                                  -- 14
      "users:",                                                         -- 15
      "  bob: {password: x, roles: [user, god, admn]}",                 -- 16
      "surfaces:",                                                      -- 17
      "  native: {approval: [review, opts, core, nope], auht: [basic]}", -- 18
      "  openeo:",                                                      -- 19
      "    estimator: price",                                           -- 20
      "    job_timeout: 5x",                                            -- 21
      "    task_cpu: lots",                                             -- 22
      "    auth: [basic, pasword]",                                     -- 23
      "  other: {module: site.greeter, mount: /jobrt/v1}",              -- 24
    }, "\n") .. "\n"
    local core_line = problems_of(text)
    local core_error
    for _, l in ipairs(core_line) do
      if l:find("plugins.core.use", 1, true) then core_error = l end
    end
    t.match(core_error or "", "^t%.yaml:14: plugins%.core%.use: .*plugin core may not require jobrt%.core")
    local expected = {
      "t.yaml:3: warning: plugins.prices: no surface names this plugin (it is never loaded)",
      't.yaml:3: plugins.prices.cpu_second: expected a number, got "abc"',
      't.yaml:4: plugins.prices.curency: unknown key (did you mean "currency"?)',
      't.yaml:5: plugins.review.use: unknown plugin module "approve.manul" (did you mean "approve.manual"?)',
      "t.yaml:6: warning: plugins.mine: no surface names this plugin (it is never loaded)",
      "t.yaml:7: plugins.opts: missing \"label\"",
      "t.yaml:9: plugins.opts.count: must be at least 1",
      't.yaml:10: plugins.opts.mode: unknown value "fats" (did you mean "fast"?)',
      "t.yaml:11: plugins.opts.tags[2]: expected a string, got 2",
      't.yaml:12: plugins.opts.every: invalid duration "soon": expected seconds or parts such as "30s", "5m", "1h30m", "250ms"',
      "t.yaml:13: warning: plugins.spare: no surface names this plugin (it is never loaded)",
      core_error,
      't.yaml:16: users.bob.roles[2]: unknown role "god" (known: admin, approver, user)',
      't.yaml:16: users.bob.roles[3]: unknown role "admn" (did you mean "admin"?)',
      't.yaml:18: surfaces.native.approval[4]: unknown plugin "nope" (not in plugins, nor a plugin module)',
      't.yaml:18: surfaces.native.auht: unknown key (did you mean "auth"?)',
      't.yaml:20: surfaces.openeo.estimator: unknown plugin "price" (did you mean "prices"?)',
      't.yaml:21: surfaces.openeo.job_timeout: invalid duration "5x": unknown unit "x" (use ms, s, m, h or d)',
      't.yaml:22: surfaces.openeo.task_cpu: invalid cpu "lots": expected cores ("2", "0.5") or millicores ("500m")',
      't.yaml:23: surfaces.openeo.auth[2]: expected one of basic, bearer, token, mtls, got "pasword"',
      't.yaml:24: surfaces.other.mount: "/jobrt/v1" is already the mount of surfaces.native',
    }
    -- A module that does not exist names where it was looked for.
    local got = problems_of(text)
    local mine
    for i, l in ipairs(got) do
      if l:find("plugins.mine.use", 1, true) then mine = table.remove(got, i) break end
    end
    t.match(mine or "", '^t%.yaml:6: plugins%.mine%.use: unknown plugin module "site%.nothing": .*site/nothing%.lua')
    t.eq(got, expected)
  end },

  { "module options: defaults filled in and values normalised", function(t)
    local cfg, warnings = config.from_string(table.concat({
      "lua_path: [" .. PLUGINS .. "]",
      "plugins:",
      "  opts: {use: site.options, label: x, every: 2m, size: 1KiB, cpu: 500m, extra: {a: 1}}",
      "  links: {use: publish.local, url_ttl: 1h}",
      "surfaces:",
      "  native: {approval: [opts]}",
      "  openeo: {publisher: links, job_timeout: 2m, task_memory: 512MiB, task_cpu: 2}",
    }, "\n") .. "\n", "t.yaml")
    t.eq(config.format_errors(warnings or {}), {})
    t.ok(cfg, "valid")
    t.eq(cfg.surfaces.native, { module = "api.native", mount = "/jobrt/v1", approval = { "opts" } })
    t.eq({ cfg.surfaces.openeo.job_timeout, cfg.surfaces.openeo.task_memory, cfg.surfaces.openeo.task_cpu,
      cfg.surfaces.openeo.sync_timeout, cfg.surfaces.openeo.publisher },
      { 120, 512 << 20, 2000, 3, "links" })
    -- The file's plugin entries stay as written; the loader hands the module
    -- its options checked, normalised and complete.
    t.eq(cfg.plugins.links, { use = "publish.local", url_ttl = "1h" })
    local loader = require("jobrt.plugins").new({ lua_path = cfg.lua_path })
    local _, opts = assert(loader:plugin(cfg.plugins, "opts"))
    t.eq(opts, { label = "x", count = 3, ratio = 0.5, on = false, every = 120, size = 1024, cpu = 500,
      mode = "fast", tags = {}, extra = { a = 1 } })
    local _, links = assert(loader:plugin(cfg.plugins, "links"))
    t.eq(links, { url_ttl = 3600, license = "proprietary" })
  end },

  { "the Bacalhau surface's options: every problem by line, and the issue's example", function(t)
    local cid = string.rep("ab", 32)
    t.eq(errors_of(table.concat({
      "surfaces:",
      "  bacalhau:",
      "    approvers: [abc, 5, " .. cid .. "]",
      "    publishers: {local: nosuch}",
      "    task_cpu: lots",
      "    wasm: {image: host}",
      "    aprovers: []",
    }, "\n") .. "\n", {}), {
      "t.yaml:3: surfaces.bacalhau.approvers[1]: must be a ClientID: 64 hex digits"
        .. ' (SHA-256 of the key\'s modulus), got "abc"',
      "t.yaml:3: surfaces.bacalhau.approvers[2]: expected a string, got 5",
      't.yaml:4: surfaces.bacalhau.publishers.local: unknown plugin "nosuch" (not in plugins, nor a plugin module)',
      't.yaml:5: surfaces.bacalhau.task_cpu: invalid cpu "lots": expected cores ("2", "0.5") or millicores ("500m")',
      't.yaml:6: surfaces.bacalhau.wasm: missing "command"',
      't.yaml:7: surfaces.bacalhau.aprovers: unknown key (did you mean "approvers"?)',
    })
    local cfg = valid(t, table.concat({
      "lua_path: [" .. PLUGINS .. "]",
      "sandbox: {images: {host: /, ubuntu: /}}",
      "surfaces:",
      "  bacalhau:",
      "    approvers: [" .. cid:upper() .. "]",
      "    approval: [opts]",
      "    publishers: {local: local}",
      "    wasm: {command: [wasmtime, run]}",
      "plugins:",
      "  opts: {use: site.options, label: x}",
      "  local: {use: publish.local, url_ttl: 1h}",
    }, "\n") .. "\n", {})
    local b = cfg.surfaces.bacalhau
    t.eq({ b.approvers, b.approval, b.publishers, b.wasm, b.task_cpu, b.task_timeout },
      { { cid:upper() }, { "opts" }, { ["local"] = "local" }, { image = "host", command = { "wasmtime", "run" } },
        500, 1800 })
  end },

  { "the Kuscia surface's options: every problem by line, and the issue's example", function(t)
    t.eq(errors_of(table.concat({
      "sandbox: {images: {host: /, alpine: /srv/alpine}}",
      "surfaces:",
      "  kuscia:",
      "    tokens: [abc, 5]",
      "    domains: [alice, Bob, b-, " .. string.rep("d", 64) .. "]",
      "    approval: [nosuch]",
      "    app_images:",
      "      nocmd: {image: host}",
      "      badres: {command: [x], resources: {cpu: lots, gpu: 1}}",
      "    client_cert: maybe",
      "    tokes: []",
    }, "\n") .. "\n", {}), {
      "t.yaml:4: surfaces.kuscia.tokens[2]: expected a string, got 5",
      "t.yaml:5: surfaces.kuscia.domains[2]: must be a domain id: lower-case letters, digits and '-', starting and"
        .. ' ending with a letter or digit, got "Bob"',
      "t.yaml:5: surfaces.kuscia.domains[3]: must be a domain id: lower-case letters, digits and '-', starting and"
        .. ' ending with a letter or digit, got "b-"',
      't.yaml:6: surfaces.kuscia.approval[1]: unknown plugin "nosuch" (not in plugins, nor a plugin module)',
      't.yaml:8: surfaces.kuscia.app_images.nocmd: missing "command" (the argv of each party\'s process;'
        .. " {{.TASK_ID}} and the like are filled in)",
      't.yaml:9: surfaces.kuscia.app_images.badres.resources.cpu: invalid cpu "lots": expected cores ("2", "0.5")'
        .. ' or millicores ("500m")',
      't.yaml:9: surfaces.kuscia.app_images.badres.resources.gpu: unknown key (did you mean "cpu"?)',
      't.yaml:10: surfaces.kuscia.client_cert: expected true or false, got "maybe"',
      't.yaml:11: surfaces.kuscia.tokes: unknown key (did you mean "tokens"?)',
    })
    -- What the schema cannot say, checked against the rest of the file.
    t.eq(errors_of(table.concat({
      "sandbox: {images: {host: /, alpine: /srv/alpine}}",
      "surfaces:",
      "  kuscia:",
      "    domains: [alice, " .. string.rep("d", 64) .. "]",
      "    app_images:",
      "      a: {image: ubuntu, command: [x]}",
      "      b:",
      "        command: [run, '{{.TASK_ID}}', '{{ .NOPE }}']",
    }, "\n") .. "\n", {}), {
      "t.yaml:4: surfaces.kuscia.domains[2]: longer than 63 characters",
      't.yaml:6: surfaces.kuscia.app_images.a.image: "ubuntu" is not an image of sandbox.images (alpine, host)',
      "t.yaml:8: surfaces.kuscia.app_images.b.command: unknown placeholder {{.NOPE}} (known: TASK_ID, TASK_ALIAS,"
        .. " TASK_INPUT_CONFIG, KUSCIA_JOB_ID, KUSCIA_TASK_ID, KUSCIA_DOMAIN_ID, KUSCIA_ROLE)",
    })
    local cfg = valid(t, table.concat({
      "surfaces:",
      "  kuscia:",
      '    tokens: ["<token>"]',
      "    domains: [alice, bob]",
      "    approval: []",
      "    app_images:",
      "      secretflow-image:",
      "        image: host",
      [[        command: [sh, -c, 'echo "$KUSCIA_DOMAIN_ID: $TASK_INPUT_CONFIG"'] ]],
      "        resources: {cpu: 100m, memory: 256MiB}    # optional",
    }, "\n") .. "\n", {})
    t.eq(cfg.surfaces.kuscia, {
      mount = "/api/v1/job", module = "api.kuscia", tokens = { "<token>" }, domains = { "alice", "bob" },
      approval = {}, client_cert = false,
      app_images = { ["secretflow-image"] = { image = "host", env = {},
        command = { "sh", "-c", 'echo "$KUSCIA_DOMAIN_ID: $TASK_INPUT_CONFIG"' },
        resources = { cpu = 100, memory = 256 << 20 } } },
    })
  end },

  { "a start loads and checks each module once: the config pass hands them to the mount", function(t)
    local text = table.concat({
      "lua_path: [" .. PLUGINS .. "]",
      "plugins:",
      "  opts: {use: site.options, label: x, every: 2m}",
      "  links: {use: publish.local, url_ttl: 1h}",
      "surfaces:",
      "  native: {approval: [opts]}",
      "  openeo: {publisher: links, estimator: estimate.price_table}",
    }, "\n") .. "\n"
    local cfg = assert(config.from_string(text, "t.yaml"))
    local loader = config.loader(cfg)
    t.ok(config.loader(cfg) == loader, "one loader per checked cfg")
    -- Count what the mount still loads.
    local loads = {}
    local load = loader.load
    loader.load = function(self, name, ...)
      loads[#loads + 1] = name
      return load(self, name, ...)
    end
    local _, opts = assert(loader:plugin(cfg.plugins, "opts"))
    t.eq({ opts.label, opts.every, opts.count }, { "x", 120, 3 }, "checked and complete")
    opts.label = "changed"
    t.eq(select(2, loader:plugin(cfg.plugins, "opts")).label, "x", "each caller gets its own copy")
    local app, err = require("jobrt.server").new(cfg, loader)
    t.ok(app, err)
    -- Surfaces and the configured plugins come from the config pass; only a
    -- plugin named by module alone (openEO's estimate.price_table, Bacalhau's
    -- publish.local) loads at the mount.
    table.sort(loads)
    t.eq(loads, { "policies.estimate.price_table", "policies.publish.local" })
    -- An entry changed after the check (or a cfg checked without modules)
    -- is loaded and checked again.
    local shallow = assert(config.from_string(text, "t.yaml", SHALLOW))
    t.ok(config.loader(shallow) ~= loader)
    t.eq(next(config.loader(shallow).kept.plugins), nil)
    cfg.plugins.links = { use = "publish.local", url_ttl = "2h" }
    t.eq(select(2, assert(loader:plugin(cfg.plugins, "links"))).url_ttl, 7200)
  end },

  { "TLS files: missing, not PEM, encrypted, corrupted, mismatched, and good ones", function(t)
    local dir = tmpdir()
    t.cleanup = function() os.execute("rm -rf '" .. dir .. "'") end
    local bin = os.getenv("JOBRT_BIN") or "./jobrt"
    t.ok(os.execute("'" .. bin .. "' certs '" .. dir .. "' >/dev/null"), "jobrt certs")
    local function read(name)
      local f = assert(io.open(dir .. "/" .. name, "rb"))
      return f:read("a"), f:close()
    end
    local function write(name, text)
      local f = assert(io.open(dir .. "/" .. name, "wb"))
      f:write(text)
      f:close()
      return dir .. "/" .. name
    end
    -- A corrupted copy: the armour stays, the second line of base64 is changed.
    local function corrupt(name)
      local text = read(name)
      local first = text:find("\n", 1, true)
      local second = text:find("\n", first + 1, true)
      return write("bad_" .. name, text:sub(1, first) .. ("A"):rep(second - first - 1) .. text:sub(second))
    end
    local bad_crt, bad_key, bad_ca = corrupt("server.crt"), corrupt("server.key"), corrupt("ca.crt")
    local encrypted = write("encrypted.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")
    local tls = FIXTURES .. "tls/"
    local function listener(port, cert, key, ca)
      return "  - address: 127.0.0.1:" .. port .. "\n    tls:\n      cert: " .. cert .. "\n      key: " .. key ..
        "\n" .. (ca and ("      client_ca: " .. ca .. "\n") or "")
    end
    local d = dir .. "/"
    local text = "listen:\n" ..
      listener(1, d .. "server.crt", d .. "server.key", d .. "ca.crt") ..     -- 2-6: good
      listener(2, tls .. "not_pem.crt", d .. "server.crt", nil) ..            -- 7-10: not PEM, a cert as key
      listener(3, d .. "missing.crt", encrypted, nil) ..                      -- 11-14
      listener(4, bad_crt, d .. "server.key", nil) ..                         -- 15-18: cert does not parse
      listener(5, d .. "server.crt", bad_key, nil) ..                         -- 19-22: key does not parse
      listener(6, d .. "server.crt", d .. "client.key", nil) ..               -- 23-26: key of another cert
      listener(7, d .. "server.crt", d .. "server.key", bad_ca)               -- 27-31: CA does not parse
    -- Lines: "listen:" is 1; each listener is address, tls, cert, key[, client_ca].
    local got = problems_of(text)
    local want = {
      { 9, 'listen[2].tls.cert: "' .. tls .. 'not_pem.crt" does not parse: expected a PEM certificate ("-----BEGIN ...-----")' },
      { 10, 'listen[2].tls.key: "' .. d .. 'server.crt" does not parse: expected a PEM private key ("-----BEGIN ...-----")' },
      { 13, "listen[3].tls.cert: cannot read the cert file: " .. d .. "missing.crt: No such file or directory" },
      { 14, 'listen[3].tls.key: "' .. encrypted .. '" does not parse: the key is encrypted (jobrt reads unencrypted keys only)' },
      { 17, "listen[4].tls.cert: cannot load certificate " .. bad_crt .. ": " },
      { 22, "listen[5].tls.key: cannot load private key " .. bad_key .. ": " },
      { 26, "listen[6].tls.key: cannot load private key " .. d .. "client.key: error:05800074:x509 certificate routines::key values mismatch" },
      { 31, "listen[7].tls.client_ca: cannot load client CA " .. bad_ca .. ": " },
    }
    t.eq(#got, #want, table.concat(got, "\n"))
    for i, w in ipairs(want) do
      local prefix = "t.yaml:" .. w[1] .. ": " .. w[2]
      t.eq((got[i] or ""):sub(1, #prefix), prefix)
    end
  end },

  { "a valid file with an unused plugin: warnings only", function(t)
    local cfg, warnings = config.from_string("plugins:\n  spare: {use: approve.manual}\n", "t.yaml")
    t.ok(cfg, "valid")
    t.eq(config.format_errors(warnings), {
      "t.yaml:2: warning: plugins.spare: no surface names this plugin (it is never loaded)" })
  end },

  { "executor: the Slurm backend's keys, checked by line", function(t)
    local cfg = valid(t, "executor:\n  backend: slurm\n  partition: debug\n  account: lab\n"
      .. "  conf: /etc/slurm/slurm.conf\n  poll: 500ms\n  sbatch_args: [--qos=short]\n"
      .. "  batch: {max_tasks: 20, window: 1s, max_cpu: 2, max_memory: 2GiB}\n")
    t.eq(cfg.executor, { backend = "slurm", partition = "debug", account = "lab",
      conf = "/etc/slurm/slurm.conf", poll = 0.5, sbatch_args = { "--qos=short" }, max_tasks = 1000,
      sandbox = false,
      batch = { max_tasks = 20, width = 2, window = 1, max_cpu = 2000, max_memory = 2 << 30 } })
    t.eq(errors_of("executor:\n  backend: slrum\n  bin: usr/bin\n  poll: 0\n"
      .. "  batch: {widht: 2, max_tasks: 0}\n  partiton: x\n"), {
      't.yaml:2: executor.backend: unknown value "slrum" (did you mean "slurm"?)',
      't.yaml:3: executor.bin: must be an absolute path, got "usr/bin"',
      "t.yaml:4: executor.poll: must be more than 0",
      "t.yaml:5: executor.batch.max_tasks: must be at least 1",
      't.yaml:5: executor.batch.widht: unknown key (did you mean "width"?)',
      't.yaml:6: executor.partiton: unknown key (did you mean "partition"?)',
    })
    -- The sandbox's layers cannot be required of tasks it does not run.
    t.eq(errors_of("sandbox: {require: [userns]}\nexecutor: {backend: slurm}\n"), {
      "t.yaml:1: sandbox.require: the slurm executor cannot check the layers of the cluster's"
        .. " nodes from here; remove sandbox.require (with executor.sandbox each node's helper"
        .. " builds what the node allows)" })
    t.eq(problems_of("node: {max_tasks: 4}\nexecutor: {backend: slurm}\n"), {
      "t.yaml:1: warning: node: not used with executor.backend slurm: Slurm allocates each task;"
        .. " executor.max_tasks bounds how many jobrt keeps in Slurm" })
    t.eq(problems_of("node: {max_tasks: 4}\n"), {})
  end },

  { "deploy/slurm.yaml and the README's Slurm example are valid", function(t)
    local cfg, warnings = config.load("deploy/slurm.yaml", SHALLOW)
    t.ok(cfg, "deploy/slurm.yaml")
    t.eq(warnings, {})
    t.eq(cfg.executor.backend, "slurm")
    local f = assert(io.open("README.md"))
    local readme = f:read("a")
    f:close()
    local block = readme:match("### Tasks as Slurm jobs\n.-```yaml\n(.-)```")
    t.ok(block, "the README has the block")
    cfg = valid(t, block or "")
    t.eq(cfg.executor.batch.width, 4)
    t.eq(cfg.executor.partition, "batch")
  end },

  { "deploy/postgres.yaml and the README's PostgreSQL example are valid", function(t)
    local cfg, warnings = config.load("deploy/postgres.yaml", SHALLOW)
    t.ok(cfg, "deploy/postgres.yaml")
    t.eq(warnings, {})
    t.eq(cfg.store.backend, "postgres")
    -- a task whose daemon died stops before another instance retries it
    t.ok(cfg.sandbox.orphan_timeout < cfg.store.failover, "orphan_timeout below failover")
    local f = assert(io.open("README.md"))
    local readme = f:read("a")
    f:close()
    local block = readme:match("### Several instances on one PostgreSQL database\n.-```yaml\n(.-)```")
    t.ok(block, "the README has the block")
    cfg = valid(t, block or "")
    t.eq(cfg.store.url, "postgresql://jobrt@db.example:5432/jobrt")
    t.ok(cfg.sandbox.orphan_timeout < cfg.store.failover, "orphan_timeout below failover")
  end },

  { "deploy/default.yaml writes out the embedded default", function(t)
    local cfg, warnings = config.load("deploy/default.yaml")
    t.eq(warnings, {})
    t.eq(cfg, config.default())
  end },

  { "--listen replaces the plain listeners and keeps the TLS ones", function(t)
    local cfg = assert(config.load("deploy/mtls.yaml", SHALLOW))
    t.eq(#cfg.listen, 2)
    assert(config.apply_overrides(cfg, { listen = "127.0.0.1:9999" }))
    t.eq(#cfg.listen, 2)
    t.eq(cfg.listen[1], { host = "127.0.0.1", port = 9999, address = "127.0.0.1:9999" })
    t.eq(cfg.listen[2].address, "127.0.0.1:8443")
    t.eq(cfg.listen[2].tls.require_client_cert, true)
    t.eq({ config.apply_overrides(cfg, { listen = "127.0.0.1:8443" }) }, { nil,
      "--listen: 127.0.0.1:8443 is a TLS listener of the deployment file; --listen replaces only the plain listeners" })
    t.eq(cfg.listen[1].port, 9999, "unchanged on error")
  end },
}
