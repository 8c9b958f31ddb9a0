-- The request pipeline: match the route among every mounted surface, build
-- req and res, run the handler as a bounded coroutine, and turn whatever it
-- raises into the surface's own error shape. Answers wait for the store's
-- group commit, so a 2xx means the change is on disk.
local access = require("jobrt.access")
local async = require("jobrt.async")
local json = require("jobrt.json")
local router_mod = require("jobrt.router")
local runtime = require("jobrt.runtime")
local submit = require("jobrt.submit")

local M = {}

local Failure = {}
Failure.__index = Failure
Failure.__tostring = function(f) return string.format("%d %s: %s", f.status, f.code, f.message) end

-- fail(status, code, message[, headers]): raise an error that becomes an
-- answer in the surface's error shape.
function M.fail(status, code, message, headers)
  error(setmetatable({ status = status, code = code, message = message, headers = headers }, Failure), 2)
end

function M.is_failure(v)
  return getmetatable(v) == Failure
end

local function default_error_body(status, code, message)
  return { code = code, message = message }
end

-- The runtime's own endpoints, mounted like a surface at /jobrt.
local runtime_surface = {
  name = "jobrt",
  auth = false,
  routes = function(r)
    r:get("/healthz", function(_, res)
      res:json({ status = "ok" })
    end)
    r:get("/version", function(_, res)
      res:json({ name = "jobrt", version = runtime.version, api = "/jobrt/v1", lua = _VERSION })
    end)
  end,
}

local App = {}
App.__index = App

local Registrar = {}
Registrar.__index = Registrar
for _, method in ipairs({ "GET", "POST", "PUT", "PATCH", "DELETE" }) do
  Registrar[method:lower()] = function(self, template, handler, opts)
    self:add(method, template, handler, opts)
  end
end

-- add(method, template, handler[, opts]): opts.public = true lets the
-- route answer without credentials (a principal is still set when valid
-- ones are given).
function Registrar:add(method, template, handler, opts)
  if type(template) ~= "string" or template:sub(1, 1) ~= "/" then
    error("route template must start with '/': " .. tostring(template), 2)
  end
  if type(handler) ~= "function" then error("route handler must be a function", 2) end
  local path = router_mod.join(self.mount, template)
  self.app.router:add(method, path, handler, {
    surface = self.mounted, public = (opts and opts.public) or self.mounted.auth == false,
    metric = access.route(self.mounted.name, method, path),
  })
end

-- A route outside the mount, for what a surface must answer at the host's
-- root (openEO's /.well-known/openeo).
function Registrar:root(method, template, handler, opts)
  self.app.router:add(method, template, handler, {
    surface = self.mounted, public = (opts and opts.public) or self.mounted.auth == false,
    metric = access.route(self.mounted.name, method, template),
  })
end

local DEFAULT_AUTH = { "basic", "bearer" }

-- new(cfg, loader[, opts]) -> app | nil, err. Loads and mounts every
-- surface of cfg.surfaces, plus the runtime's own endpoints. opts.auth is
-- the authenticator (jobrt.auth), opts.signer the URL signer; without an
-- authenticator every route is refused except public ones. opts.holds
-- (jobrt.holds) learns of the jobs the policies hold.
function M.new(cfg, loader, opts)
  opts = opts or {}
  local app = setmetatable({
    cfg = cfg,
    auth = opts.auth,
    signer = opts.signer,
    holds = opts.holds,
    loader = loader,
    router = router_mod.new(),
    mounts = {},
    counter = 0,
    prefix = string.format("%x", runtime.pid()),
    in_flight = 0,
    limits = { deadline = cfg.lua.deadline, memory = cfg.lua.memory },
    -- Counts (metrics) an answer no route took.
    label_unrouted = access.unrouted(),
  }, App)
  local ok, err = app:mount("jobrt", runtime_surface, { mount = "/jobrt" })
  if not ok then return nil, err end
  local names = {}
  for name in pairs(cfg.surfaces) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local spec = cfg.surfaces[name]
    local mod, lerr = loader:surface(name, spec.module)
    if not mod then return nil, string.format("surface %s: %s", name, lerr) end
    ok, err = app:mount(name, mod, spec)
    if not ok then return nil, err end
  end
  -- Longest mount first: it decides the error shape of unmatched paths.
  table.sort(app.mounts, function(a, b) return #a.mount > #b.mount end)
  return app
end

-- A failure from the submission pipeline, raised in the request.
local function raise(f)
  M.fail(f.status, f.code, f.message)
end

-- Wrap a pipeline method so that a failure is raised, not returned.
local function raising(pipeline, method)
  return function(...)
    local v, f = pipeline[method](pipeline, ...)
    if v == nil then raise(f) end
    return v
  end
end

-- ctx.submit's opts from a request: who asks, and the request's id.
local function for_request(opts)
  opts = opts or {}
  local req = opts.req
  if req then
    opts.principal = opts.principal or req.principal
    opts.request_id = opts.request_id or req.id
  end
  return opts
end

local function sandbox_view(sb)
  sb = sb or {}
  local images, paths = {}, {}
  for k, v in pairs(sb.images or {}) do images[k] = v end
  for i, v in ipairs(sb.allow_host_paths or {}) do paths[i] = v end
  return { images = images, allow_host_paths = paths }
end

-- The image store for surfaces: store() (the handle: list, get, usage,
-- strategy), import/remove/gc (waited for), resolve(name) ->
-- "store" | "sandbox" | "pull" | nil, why (jobrt.images.resolve), pull(name,
-- opts) (waits; jobrt.image_pull.pull), ensure(name, on_state) (an
-- on-demand pull shared by its waiters) and pulling(name) (its state).
local function images_view(cfg)
  local images = require("jobrt.images")
  local view = { pull_mode = (cfg.images or {}).pull or "never" }
  function view.store() return images.open(cfg) end
  function view.resolve(name) return images.resolve(cfg, (images.open(cfg)), name) end
  function view.pull(name, opts)
    local store, err = images.open(cfg)
    if not store then return nil, err end
    return require("jobrt.image_pull").pull(cfg, store, name, opts)
  end
  function view.ensure(name, on_state)
    local store, err = images.open(cfg)
    if not store then return nil, err end
    return require("jobrt.image_pull").ensure(cfg, store, name, on_state)
  end
  -- The store's slow operations, waited for (thread pool): import(path,
  -- name), remove(name), gc() -> result | nil, err, CODE.
  for _, op in ipairs({ "import", "remove", "gc" }) do
    view[op] = function(...)
      local store, err = images.open(cfg)
      if not store then return nil, err end
      return images[op](store, ...)
    end
  end
  -- hold(id, names): job id waits for those pulls; waiting(id) -> why, or nil.
  function view.hold(id, names) require("jobrt.image_pull").hold(id, names) end
  function view.release(id) require("jobrt.image_pull").release(id) end
  function view.waiting(id) return require("jobrt.image_pull").waiting(id) end
  function view.pulling(name)
    local p = require("jobrt.image_pull").current(name)
    return p and p.state
  end
  return view
end

-- What a surface may tell its clients about the machine it runs on:
-- jobrt's version, the kernel and architecture, and the data folder's disk
-- (disk() -> {total, free, used} in bytes, or nil).
local function host_view(data_dir)
  local uv = require("luv")
  local uname = uv.os_uname() or {}
  return {
    version = tostring(runtime.version),
    system = uname.sysname or "Linux",
    machine = uname.machine or "",
    disk = function()
      local st = uv.fs_statfs(data_dir) or uv.fs_statfs(".")
      if not st then return nil end
      local total = st.blocks * st.bsize
      return { total = total, free = st.bavail * st.bsize, used = total - st.bfree * st.bsize }
    end,
  }
end

-- mod: the surface module. Besides routes it may give auth (the
-- credentials it takes), headers, error_body(status, code, message, req)
-- -> body[, http_status[, content_type]] (a table is sent as JSON, a string
-- as it is; http_status replaces the failure's status, e.g. an API that
-- answers its errors with 200), accepts = "json" (bodies of
-- another media type are refused with 415) and estimator (the plugin
-- priced by default when the deployment names none).
function App:mount(name, mod, spec)
  if type(mod) ~= "table" or type(mod.routes) ~= "function" then
    return nil, string.format("surface %s (%s): the module must return a table with a routes function",
      name, tostring(spec.module))
  end
  -- Which credentials the surface accepts: the deployment's word first,
  -- then the module's; false means the surface needs none.
  local methods = spec.auth
  if methods == nil then methods = mod.auth end
  if methods == nil then methods = DEFAULT_AUTH end
  if methods ~= false and type(methods) ~= "table" then
    return nil, string.format("surface %s: auth must be a list of methods or false", name)
  end
  local mounted = {
    name = name,
    mount = spec.mount or "/",
    surface = mod,
    auth = methods,
    error_body = type(mod.error_body) == "function" and mod.error_body or default_error_body,
    headers = mod.headers,
    json_only = mod.accepts == "json",
  }
  local auth = self.auth
  local ctx = {
    name = name,
    config = spec,
    mount = mounted.mount,
    fail = M.fail,
    auth = auth,
    signer = self.signer,
    -- owns(req, job): the caller may see and change the job.
    owns = function(req, job)
      return req.principal ~= nil and require("jobrt.auth").owns(req.principal, job)
    end,
    -- has_role(req, role): the caller's principal has that role.
    has_role = function(req, role)
      return req.principal ~= nil and require("jobrt.auth").has_role(req.principal, role)
    end,
    log = function(level, msg) runtime.log(level, name .. ": " .. tostring(msg)) end,
    -- plugin(name) -> module, options | nil, err: a plugin of the YAML's
    -- plugins section (jobrt.plugins Loader:plugin).
    plugin = function(plugin_name) return self.loader:plugin(self.cfg.plugins, plugin_name) end,
    -- outputs: read-only access to the tasks' output files (jobrt.outputs).
    outputs = require("jobrt.outputs").new(self.cfg.data_dir),
    -- sandbox: the deployment's image names and host paths tasks may use
    -- ({images = {name = rootfs}, allow_host_paths = {...}}, copies), for
    -- surfaces that check a client's image or path at submit.
    sandbox = sandbox_view(self.cfg.sandbox),
    images = images_view(self.cfg),
    host = host_view(self.cfg.data_dir),
    -- metrics: whether they are counted (metrics.enabled) and
    -- scraper(req) -> true when req carries the deployment's scrape token
    -- (metrics.token) as its bearer token.
    metrics = access.metrics(self.cfg.metrics),
    -- asset(path) -> the bytes of a file the binary ships to be served as
    -- it is (the dashboard's ui/*, api/native/openapi.json), or nil; Lua
    -- sources are not assets.
    asset = function(path)
      if type(path) ~= "string" or path:match("%.lua$") then return nil end
      return runtime.embedded(path)
    end,
  }
  -- The one way down to the core (jobrt.submit), with this surface's
  -- approval policies and estimator, loaded now so a broken one stops
  -- start-up.
  local estimator = spec.estimator
  if estimator == nil then estimator = mod.estimator end
  local holds = self.holds
  local pipeline, perr = submit.new({
    surface = name, config = spec, limits = self.cfg.limits, plugin = ctx.plugin, log = ctx.log,
    estimator = estimator, images = ctx.images,
    on_hold = holds and function(job, when) holds:note(job, when) end,
  })
  if not pipeline then return nil, string.format("surface %s: %s", name, tostring(perr)) end
  ctx.pipeline = pipeline
  local start_job = raising(pipeline, "start")
  -- submit(job, {req =, owner =, start =, estimate =}) -> the stored job.
  -- A job the pipeline finds invalid is counted (metrics) as rejected.
  ctx.submit = function(job, opts)
    opts = for_request(opts)
    local stored, f = pipeline:submit(job, opts)
    if stored == nil then
      local core = package.loaded["jobrt.core"]
      if f.status == 400 and type(core) == "table" and core.rejected then core.rejected(name, "invalid") end
      raise(f)
    end
    -- The request's later log lines are about this job.
    if opts.req and opts.req.log then opts.req.log:set("job", stored.id) end
    return stored
  end
  -- submit_body(text, {req =, owner =}) -> the stored job, from a native
  -- document's JSON text in one pass | false: the text is for submit with
  -- its decoded table (jobrt.submit's p:submit_body).
  ctx.submit_body = function(text, opts)
    local stored, f = pipeline:submit_body(text, opts)
    if stored == nil then
      local core = package.loaded["jobrt.core"]
      if f.status == 400 and type(core) == "table" and core.rejected then core.rejected(name, "invalid") end
      raise(f)
    end
    if stored and opts.req and opts.req.log then opts.req.log:set("job", stored.id) end
    return stored
  end
  -- start(id, {req =}) -> the job, after the approval policies decided.
  ctx.start = function(id, opts) return start_job(id, for_request(opts)) end
  -- update(id, changes) -> the job; approve(id, {accept, reason, by}) -> the job.
  ctx.update = raising(pipeline, "update")
  ctx.approve = raising(pipeline, "approve")
  -- may_approve(req, job): the caller may decide on the held job (admins,
  -- or a role the policy holding it names, in the job's surface).
  ctx.may_approve = function(req, job)
    local p = type(job) == "table" and self:pipeline(job.surface) or pipeline
    return (p or pipeline):may_approve(req.principal, job)
  end
  -- estimate(job[, extra]) -> estimate | nil, {code, message}
  ctx.estimate = function(job, extra) return pipeline:estimate(job, extra) end
  -- check(v, msg, code): v, or the core's failure (nil, msg, CODE) raised.
  ctx.check = function(v, msg, code)
    if v == nil then raise(submit.core_failure(msg, code)) end
    return v
  end
  mounted.ctx = ctx
  local r = setmetatable({ app = self, mount = mounted.mount, mounted = mounted }, Registrar)
  local ok, err = async.call(mod.routes, self.limits, r, ctx)
  if not ok then
    return nil, string.format("surface %s: routes failed: %s", name, tostring(err))
  end
  self.mounts[#self.mounts + 1] = mounted
  return true
end

-- pipeline(surface) -> the submission pipeline of a mounted surface | nil
function App:pipeline(surface)
  for _, m in ipairs(self.mounts) do
    if m.name == surface then return m.ctx.pipeline end
  end
  return nil
end

function App:surface_for(path)
  for _, m in ipairs(self.mounts) do
    local mount = m.mount
    -- Without making strings: this runs for every request.
    if mount == "/" or path == mount or
        (path:byte(#mount + 1) == 47 and path:find(mount, 1, true) == 1) then
      return m
    end
  end
  return nil
end

local Request = {}
Request.__index = Request

-- req:int(key[, {min =, max =}]) -> the integer query parameter key, nil
-- when absent or empty; anything else fails the request 400.
function Request:int(key, opts)
  local n, err = router_mod.integer(self.query[key], opts)
  if err then M.fail(400, "BadRequest", key .. ": " .. err) end
  return n
end

-- req:json() -> the decoded body; a malformed body fails the request 400.
function Request:json()
  if self._json == nil then
    if self.body == "" then
      M.fail(400, "BadRequest", "request body is empty; a JSON document was expected")
    end
    local value, err = json.decode(self.body)
    if value == nil and err then
      M.fail(400, "BadRequest", "request body is not valid JSON: " .. err)
    end
    self._json = value
  end
  return self._json
end

local Response = {}
Response.__index = Response

function Response:status(n)
  self.code = n
  return self
end

function Response:header(name, value)
  self.headers[name] = value
  return self
end

-- Everything that reaches the client passes here: wait until the writes
-- this request made are durable, then answer.
local function durable()
  local core = package.loaded["jobrt.core"]
  if type(core) == "table" and core.durable then
    local ok, err = core.durable()
    if not ok then
      M.fail(503, "StoreUnavailable", "the change could not be made durable: " .. tostring(err))
    end
  end
end

function Response:send(body, status)
  if self.sent then error("response already sent", 2) end
  durable()
  self.sent = true
  self.code = status or self.code or 200
  body = body or ""
  self.headers["X-Request-Id"] = self.req.id
  if self.headers["Content-Type"] == nil and body ~= "" then
    self.headers["Content-Type"] = "text/plain; charset=utf-8"
  end
  self.exchange:respond(self.code, self.headers, body)
  return true
end

function Response:json(value, status)
  self.headers["Content-Type"] = self.headers["Content-Type"] or "application/json"
  return self:send(json.encode(value), status)
end

local Writer = {}
Writer.__index = Writer

function Writer:write(chunk)
  return self.exchange:write(chunk) and true or false
end

function Writer:close()
  self.exchange:finish()
end

function Writer:alive()
  return self.exchange:alive()
end

-- res:stream(status, headers) -> writer with write(chunk) and close().
-- A stream lives as long as its client listens: from here on the Lua
-- deadline bounds each wake of the handler, not the sum of them.
function Response:stream(status, headers)
  if self.sent then error("response already sent", 2) end
  durable()
  runtime.per_wake(coroutine.running())
  self.sent = true
  self.code = status or self.code or 200
  for k, v in pairs(headers or {}) do self.headers[k] = v end
  self.headers["X-Request-Id"] = self.req.id
  self.exchange:start(self.code, self.headers)
  return setmetatable({ exchange = self.exchange }, Writer)
end

-- res:websocket([opts]) -> ws: answer 101 Switching Protocols and speak
-- WebSocket on the connection (runtime/lua/http_ws.c). A request that is
-- not a valid upgrade fails 400 (426 with Sec-WebSocket-Version: 13 for
-- another protocol version). opts: max_message (bytes, at most
-- limits.max_body; default 1 MiB), max_queued (output bytes before send
-- waits; default 1 MiB), ping (seconds between pings; default 30). The
-- object: ws:receive([timeout_s]) -> data, "text"|"binary" | nil,
-- "timeout" | nil, "closed", code; ws:send(data[, "binary"]) -> true |
-- nil, err (waits while the output queue is full); ws:close([code[,
-- reason]]); ws:alive(); ws:queued(). When the handler returns the
-- WebSocket is closed (1000); a failure raised after the upgrade closes it
-- with 1008 (4xx) or 1011 and the message as the reason.
function Response:websocket(opts)
  if self.sent then error("response already sent", 2) end
  durable()
  self.headers["X-Request-Id"] = self.req.id
  local ws, status, reason = self.exchange:websocket(self.headers, opts)
  if not ws then
    if status == 426 then
      M.fail(426, "UpgradeRequired", reason, { ["Sec-WebSocket-Version"] = "13" })
    end
    M.fail(status, status == 400 and "BadRequest" or "Unavailable", reason)
  end
  -- Like a stream, a WebSocket lives as long as its peer: the deadline
  -- bounds each wake of the handler (Bacalhau's logs follow a whole job).
  runtime.per_wake(coroutine.running())
  self.sent = true
  self.code = 101
  self.upgraded = ws
  return ws
end

function App:request_id(headers)
  local given = headers["x-request-id"]
  if given and #given <= 64 and given:match("^[%w%-_%.:]+$") then return given end
  self.counter = self.counter + 1
  return string.format("%s-%x", self.prefix, self.counter)
end

--- server.redact(target) -> target with the values of secret query
-- parameters replaced by "REDACTED", for logs (jobrt.access).
M.redact = access.redact

-- A body in a media type other than JSON, for a surface that takes only
-- JSON: the content type named, or nil when the body is fine.
local function not_json(req)
  if req.body == nil or req.body == "" then return nil end
  local ct = req.headers["content-type"]
  local media = type(ct) == "string" and ct:match("^%s*([^;%s]+)") or nil
  media = media and media:lower()
  if media == "application/json" or (media and media:find("^application/[%w.%-]+%+json$")) then return nil end
  return ct or "none"
end

-- A surface's own headers (a table, or function(req, allow) -> table; e.g.
-- openEO's CORS headers) go on every answer of that surface: errors and
-- OPTIONS (allow = the route's methods) included.
local function surface_headers(mounted, req, res, allow)
  local h = mounted and mounted.headers
  if type(h) == "function" then
    local ok, v = pcall(h, req, allow)
    if not ok then runtime.log("error", req.id .. " surface headers failed: " .. tostring(v), req.log) end
    h = ok and v or nil
  end
  if type(h) == "table" then
    for k, v in pairs(h) do res.headers[k] = v end
  end
end

-- Answer an error in the shape of the surface, unless an answer is already
-- on its way (then the connection is the only thing left to end).
local function answer_error(mounted, req, res, status, code, message, headers)
  if res.upgraded then
    -- After a 101 only the WebSocket's close can carry the failure.
    res.upgraded:close(status < 500 and 1008 or 1011, message)
    return
  end
  if res.sent then
    res.exchange:finish()
    return
  end
  local body, as, media = (mounted and mounted.error_body or default_error_body)(status, code, message, req)
  for k, v in pairs(headers or {}) do res.headers[k] = v end
  res.sent = true
  res.code = math.tointeger(as) or status
  res.headers["X-Request-Id"] = req.id
  if type(body) == "string" then
    if body ~= "" or media then res.headers["Content-Type"] = media or "text/plain; charset=utf-8" end
  else
    res.headers["Content-Type"] = media or "application/json"
    body = json.encode(body)
  end
  res.exchange:respond(res.code, res.headers, body)
end

-- The principal of a request, or nil, status, code, message, headers when
-- the route needs credentials the request lacks. Public routes take valid
-- credentials when given and ignore invalid ones.
function App:authenticate(req, meta, mounted)
  local methods = mounted.auth
  if meta.public then
    if methods and self.auth and (req.headers.authorization or req.headers.token or req.tls) then
      local p = self.auth:authenticate(req, methods)
      return p or false
    end
    return false
  end
  if not self.auth or not methods then
    return nil, 401, "AuthenticationRequired", "this server has no authentication configured"
  end
  return self.auth:authenticate(req, methods)
end

-- A request's coroutine (async.start; no closure is made per request).
local function serve(app, req, res, route, mounted)
  local meta = route.meta
  -- Inside the coroutine: checking a password hash waits on the thread pool.
  local principal, status, code, message, headers = app:authenticate(req, meta, mounted)
  if not principal and status then M.fail(status, code, message, headers) end
  req.principal = principal or nil
  if type(principal) == "table" and type(principal.name) == "string" then
    req.log:set("principal", principal.name)
  end
  local media = mounted.json_only and not_json(req)
  if media then
    M.fail(415, "UnsupportedMediaType", string.format(
      "the body must be JSON (Content-Type: application/json), got Content-Type %s", media))
  end
  route.handler(req, res)
  -- A handler that set no body still answers, after its writes are durable.
  if not res.sent then res:send("", res.code or 204) end
  if res.upgraded then res.upgraded:close() end
end

local function request_done(res)
  res._app.in_flight = res._app.in_flight - 1
  access.log(res.req, res, res._started)
end

local function request_failed(res, err, kind, trace)
  local app, req, mounted = res._app, res.req, res._mounted
  app.in_flight = app.in_flight - 1
  if M.is_failure(err) then
    answer_error(mounted, req, res, err.status, err.code, err.message, err.headers)
  elseif kind == "deadline" then
    runtime.log("error", req.id .. " handler exceeded its time limit: " .. tostring(trace), req.log)
    answer_error(mounted, req, res, 500, "Timeout",
      "the request handler exceeded its time limit of " .. app.limits.deadline .. " s")
  elseif kind == "memory" then
    runtime.log("error", req.id .. " handler exceeded its memory limit", req.log)
    answer_error(mounted, req, res, 500, "OutOfMemory", "the request handler exceeded its memory limit")
  else
    runtime.log("error", req.id .. " handler failed: " .. tostring(trace or err), req.log)
    answer_error(mounted, req, res, 500, "InternalError",
      "internal error (request " .. req.id .. ")")
  end
  access.log(req, res, res._started)
end

-- handle(raw, exchange): called by jobrt.http for every request.
function App:handle(raw, exchange)
  local started = runtime.hrtime()
  local req = setmetatable(raw, Request)
  req.id = self:request_id(raw.headers)
  -- The headers every answer has (set again when it is sent), so the
  -- table is made with room for them: no growing it per request.
  local res = setmetatable({ exchange = exchange, req = req, code = nil, sent = nil,
    _app = self, _started = started, _mounted = nil,
    headers = { ["X-Request-Id"] = req.id, ["Content-Type"] = nil } }, Response)
  local method = req.method == "HEAD" and "GET" or req.method
  local route, params, allow = self.router:match(method, req.path)
  if not route and params ~= "method_not_allowed" and #req.path > 1 and req.path:sub(-1) == "/" then
    -- "/openeo/1.2/" is the mount's root as clients write it.
    route, params, allow = self.router:match(method, req.path:sub(1, -2))
  end
  local query, qerr = router_mod.query(req.query_string)
  -- The surface whose shape the answer takes: the route's, else (no route,
  -- or a malformed query) the one whose mount the path is under.
  local mounted
  if route and query then
    mounted = route.meta.surface
  else
    mounted = self:surface_for(req.path)
  end
  -- What the lines logged for this request say besides their message.
  req.log = runtime.log_context(req.id, mounted and mounted.name)
  surface_headers(mounted, req, res)

  if not query then
    self.label_unrouted(exchange, mounted and mounted.name or "", req.method)
    answer_error(mounted, req, res, 400, "BadRequest", "malformed query string: " .. tostring(qerr))
    return access.log(req, res, started)
  end
  req.query = query

  if not route then
    self.label_unrouted(exchange, mounted and mounted.name or "", req.method)
    if params == "method_not_allowed" and req.method == "OPTIONS" then
      -- The surface of the path's routes answers (a root route's included).
      local other = self.router:match(allow[1] == "HEAD" and "GET" or allow[1], req.path)
      if other and other.meta.surface ~= mounted then
        res.headers = {}
        surface_headers(other.meta.surface, req, res, allow)
      elseif mounted then
        surface_headers(mounted, req, res, allow)
      end
      res.sent, res.code = true, 204
      res.headers.Allow = table.concat(allow, ", ")
      res.headers["X-Request-Id"] = req.id
      exchange:respond(204, res.headers)
    elseif params == "method_not_allowed" then
      answer_error(mounted, req, res, 405, "MethodNotAllowed",
        string.format("%s is not allowed on %s", req.method, req.path),
        { Allow = table.concat(allow, ", ") })
    elseif params == "bad_request" then
      answer_error(mounted, req, res, 400, "BadRequest", "malformed path: " .. tostring(allow))
    else
      answer_error(mounted, req, res, 404, "NotFound", "no such endpoint: " .. req.path)
    end
    return access.log(req, res, started)
  end
  req.params = params
  req.surface = mounted.name
  if type(params.job_id) == "string" then req.log:set("job", params.job_id) end
  access.label(exchange, route.meta.metric)

  self.in_flight = self.in_flight + 1
  res._mounted = mounted
  async.start(serve, self.limits.deadline, self.limits.memory, req.log, request_done,
    request_failed, res, self, req, res, route, mounted)
end

return M
