-- Principals and authentication for the request pipeline: HTTP Basic against
-- the configured users, bearer tokens this daemon issued (kept only as
-- SHA-256 hashes in DATA/auth/tokens), static tokens from the deployment
-- (Kuscia's Token header), client certificates, and the admin credential
-- the embedded default generates on first start. Failures are
-- nil, status, code, message[, headers], never revealing which part of a
-- credential was wrong.
local crypto = require("jobrt.crypto")
local json = require("jobrt.json")
local uv = require("luv")

local M = {}

local DEFAULT_TTL = 24 * 3600
local CACHE_TTL = 300       -- seconds a verified Basic credential skips scrypt
local CACHE_MAX = 1024
local BOOTSTRAP_USER = "admin"

local function log(level, msg)
  local ok, runtime = pcall(require, "jobrt.runtime")
  if ok and runtime.log then runtime.log(level, "auth: " .. msg) end
end

local function copy_roles(roles)
  local out = {}
  for i, r in ipairs(roles or {}) do out[i] = r end
  return out
end

---------------------------------------------------------------------------
-- Files: small, written whole or appended, always fsynced, mode 0600.

local function mkdir_p(path, mode)
  local sofar = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    local ok, err, code = uv.fs_mkdir(sofar, mode)
    if not ok and code ~= "EEXIST" then return nil, err end
  end
  return true
end

local function fsync_dir(dir)
  local fd = uv.fs_open(dir, "r", 0)
  if fd then
    uv.fs_fsync(fd)
    uv.fs_close(fd)
  end
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function write_all(fd, data)
  local off = 0
  while off < #data do
    local n, err = uv.fs_write(fd, data:sub(off + 1), -1)
    if not n then return nil, err end
    off = off + n
  end
  return true
end

-- Append one line and fsync it; creates the file 0600.
local function append_line(path, line)
  local fd, err = uv.fs_open(path, "a", 384) -- 0600
  if not fd then return nil, err end
  local ok, werr = write_all(fd, line .. "\n")
  if ok then ok, werr = uv.fs_fsync(fd) end
  uv.fs_close(fd)
  if not ok then return nil, path .. ": " .. tostring(werr) end
  return true
end

-- Replace path atomically with data (tmp, fsync, rename, fsync dir), 0600.
local function write_file(path, data)
  local tmp = path .. ".tmp"
  local fd, err = uv.fs_open(tmp, "w", 384)
  if not fd then return nil, err end
  uv.fs_fchmod(fd, 384)
  local ok, werr = write_all(fd, data)
  if ok then ok, werr = uv.fs_fsync(fd) end
  uv.fs_close(fd)
  if ok then ok, werr = uv.fs_rename(tmp, path) end
  if not ok then
    uv.fs_unlink(tmp)
    return nil, path .. ": " .. tostring(werr)
  end
  fsync_dir(dirname(path))
  return true
end

local function read_file(path)
  local fd, err, code = uv.fs_open(path, "r", 0)
  if not fd then return nil, err, code end
  local st = uv.fs_fstat(fd)
  local parts, off = {}, 0
  while true do
    local chunk = uv.fs_read(fd, 65536, off)
    if not chunk or chunk == "" then break end
    parts[#parts + 1] = chunk
    off = off + #chunk
  end
  uv.fs_close(fd)
  return table.concat(parts), st
end

local function auth_dir(cfg)
  return (cfg.data_dir or "./jobrt-data") .. "/auth"
end

---------------------------------------------------------------------------
-- Header parsing

-- "Scheme  credentials" -> scheme (lower-case), credentials; or nil.
local function split_authorization(value)
  if type(value) ~= "string" then return nil end
  local scheme, at = value:match("^%s*([%w!#$%%&'*+.^_`|~-]+)%s+()")
  if not scheme then return nil end
  -- Trailing blanks are rare: a lazy capture before them cost every request.
  local rest = value:sub(at)
  if rest:find("%s$") then rest = rest:match("^(.-)%s*$") end
  if rest == "" then return nil end
  return scheme:lower(), rest
end

-- The CN of an RFC 2253 subject ("CN=alice,O=Example"), escapes resolved.
local function common_name(subject)
  if type(subject) ~= "string" then return nil end
  local i, n = 1, #subject
  while i <= n do
    local typ, eq = subject:match("^%s*([%w%.%-]+)%s*()=", i)
    if not typ then return nil end
    i = eq + 1
    local buf = {}
    while i <= n do
      local c = subject:sub(i, i)
      if c == "\\" then
        local h = subject:match("^%x%x", i + 1)
        if h then
          buf[#buf + 1] = string.char(tonumber(h, 16))
          i = i + 3
        else
          buf[#buf + 1] = subject:sub(i + 1, i + 1)
          i = i + 2
        end
      elseif c == "," or c == "+" or c == ";" then
        i = i + 1
        break
      else
        buf[#buf + 1] = c
        i = i + 1
      end
    end
    if typ:upper() == "CN" or typ == "2.5.4.3" then return table.concat(buf) end
  end
  return nil
end
M.common_name = common_name

---------------------------------------------------------------------------
-- The authenticator

local Auth = {}
Auth.__index = Auth

local HASH_SHAPE = {
  "^scrypt%$%d+%$%d+%$%d+%$[%w+/]+=*%$[%w+/]+=*$",
  "^pbkdf2%-sha256%$%d+%$[%w+/]+=*%$[%w+/]+=*$",
}

local function hash_shape_ok(h)
  for _, p in ipairs(HASH_SHAPE) do
    if h:match(p) then return true end
  end
  return false
end

local function fail(status, code, message, headers)
  return nil, status, code, message, headers
end

local function now_of(self)
  return self.now()
end

-- Replay DATA/auth/tokens: issue and revoke records, expired ones dropped;
-- the file is rewritten without them when anything was dropped.
local function load_tokens(self)
  local text, err, code = read_file(self.tokens_path)
  if not text then
    if code == "ENOENT" then return true end
    return nil, self.tokens_path .. ": " .. tostring(err)
  end
  local now, dropped, lineno = now_of(self), 0, 0
  for line in text:gmatch("[^\n]+") do
    lineno = lineno + 1
    local rec = json.decode(line)
    if type(rec) ~= "table" or type(rec.hash) ~= "string" then
      log("warn", string.format("%s:%d: unreadable token record skipped", self.tokens_path, lineno))
      dropped = dropped + 1
    elseif rec.op == "revoke" then
      if self.tokens[rec.hash] then self.tokens[rec.hash] = nil end
      dropped = dropped + 1
    elseif rec.op == "issue" and type(rec.name) == "string" then
      if rec.expires and rec.expires <= now then
        dropped = dropped + 1
      else
        self.tokens[rec.hash] = rec
      end
    else
      dropped = dropped + 1
    end
  end
  if dropped > 0 then
    local keep = {}
    for _, rec in pairs(self.tokens) do keep[#keep + 1] = rec end
    table.sort(keep, function(a, b) return (a.issued or 0) < (b.issued or 0) end)
    for i, rec in ipairs(keep) do keep[i] = json.encode(rec) end
    local ok, werr = write_file(self.tokens_path, table.concat(keep, "\n") .. (#keep > 0 and "\n" or ""))
    if not ok then return nil, werr end
  end
  return true
end

--- auth.new(cfg[, opts]) -> authenticator | nil, err
-- cfg: the normalised configuration (users, data_dir). opts.now: a clock
-- (seconds) for tests. Plain `password` entries are accepted with a warning.
-- When cfg.users is empty, the admin made by auth.bootstrap is the user.
function M.new(cfg, opts)
  opts = opts or {}
  local self = setmetatable({
    users = {},
    tokens = {},
    cache = {},
    cache_n = 0,
    now = opts.now or os.time,
    dir = auth_dir(cfg),
  }, Auth)
  self.tokens_path = self.dir .. "/tokens"
  local any_hash = false
  local users = cfg.users or {}
  if next(users) == nil then
    local text = read_file(self.dir .. "/admin.hash")
    if text then
      local name, hash = text:match("^([^:\n]+):([^\n]+)")
      if name and hash_shape_ok(hash) then
        users = { [name] = { password_hash = hash, roles = { "admin" } } }
      else
        return nil, self.dir .. "/admin.hash: not a stored password hash"
      end
    end
  end
  for name, u in pairs(users) do
    local user = { name = name, roles = copy_roles(u.roles) }
    if type(u.password_hash) == "string" then
      if not hash_shape_ok(u.password_hash) then
        return nil, string.format('users.%s.password_hash: not a password hash '
          .. '("scrypt$N$r$p$salt$hash" or "pbkdf2-sha256$iterations$salt$hash"; '
          .. 'make one with `jobrt hash-password`)', name)
      end
      user.hash = u.password_hash
      any_hash = true
    elseif type(u.password) == "string" then
      log("warn", string.format('user "%s" has a plain-text password in the configuration; '
        .. 'use password_hash (`jobrt hash-password`) outside development', name))
      user.plain = crypto.sha256(u.password)
    else
      return nil, string.format("users.%s: no password_hash or password", name)
    end
    self.users[name] = user
  end
  self.any_hash = any_hash
  if cfg.data_dir then
    local ok, err = mkdir_p(self.dir, 448) -- 0700
    if not ok then return nil, "cannot create " .. self.dir .. ": " .. tostring(err) end
    ok, err = load_tokens(self)
    if not ok then return nil, err end
  else
    self.tokens_path = nil
  end
  return self
end

-- A hash that costs what a real check costs, for unknown user names.
local function dummy_hash(self)
  if not self.dummy then self.dummy = crypto.hash_password(crypto.random_bytes(16)) end
  return self.dummy
end

local function principal_of(user, method)
  return { name = user.name, roles = copy_roles(user.roles), method = method }
end

-- Verify name:password; true or false, never revealing which part failed.
-- Inside a request (a coroutine that may wait) the hash is checked on the
-- thread pool; elsewhere (scripts, start-up) right here.
local function verify_password(password, hash)
  if coroutine.isyieldable() and crypto.verify_password_async then
    return require("jobrt.async").wait(function(wake)
      crypto.verify_password_async(password, hash, wake)
    end)
  end
  return crypto.verify_password(password, hash)
end

function Auth:check_password(name, password)
  local user = self.users[name]
  if not user then
    if self.any_hash then
      verify_password(password, dummy_hash(self))
    else
      crypto.equal(crypto.sha256(password), crypto.sha256(""))
    end
    return false
  end
  if user.plain then
    return crypto.equal(crypto.sha256(password), user.plain)
  end
  local key = crypto.sha256(name .. "\0" .. user.hash .. "\0" .. password)
  local now = now_of(self)
  local hit = self.cache[key]
  if hit and hit > now then return true end
  local ok, msg, code = verify_password(password, user.hash)
  if ok then
    if self.cache_n >= CACHE_MAX then self.cache, self.cache_n = {}, 0 end
    if not hit then self.cache_n = self.cache_n + 1 end
    self.cache[key] = now + CACHE_TTL
    return true
  end
  if code ~= "MISMATCH" then
    log("error", string.format('user "%s": stored password hash unusable: %s', name, tostring(msg)))
  end
  return false
end

local BASIC_CHALLENGE = { ["WWW-Authenticate"] = 'Basic realm="jobrt", charset="UTF-8"' }

--- a:basic(header_value) -> principal | nil, status, code, message, headers
function Auth:basic(value)
  if value == nil or value == "" then
    return fail(401, "AuthenticationRequired", "authentication required (HTTP Basic)", BASIC_CHALLENGE)
  end
  local scheme, cred = split_authorization(value)
  if scheme ~= "basic" then
    return fail(401, "AuthenticationRequired", "malformed Authorization header: expected Basic credentials",
      BASIC_CHALLENGE)
  end
  return self:basic_credentials(cred)
end

-- The base64 part of a Basic Authorization header, already split off.
function Auth:basic_credentials(cred)
  local plain = crypto.base64_decode(cred)
  local name, password
  if plain then name, password = plain:match("^([^:]*):(.*)$") end
  if not name or name == "" then
    return fail(401, "AuthenticationRequired",
      "malformed Basic credentials: expected base64 of user:password", BASIC_CHALLENGE)
  end
  if not self:check_password(name, password) then
    return fail(403, "CredentialsInvalid", "invalid user name or password")
  end
  return principal_of(self.users[name], "basic")
end

local function token_hash(token)
  return crypto.hex(crypto.sha256(token))
end

--- a:issue_token(principal[, ttl_seconds]) -> token, expires_at | nil, err
-- A random 32-byte token (base64url); only its SHA-256 is kept, on disk
-- (fsynced) before it is returned. ttl false: it never expires.
function Auth:issue_token(principal, ttl)
  if type(principal) ~= "table" or type(principal.name) ~= "string" then
    error("issue_token: principal expected", 2)
  end
  if ttl == nil then ttl = DEFAULT_TTL end
  if ttl ~= false and (type(ttl) ~= "number" or ttl <= 0) then
    error("issue_token: ttl must be a positive number of seconds or false", 2)
  end
  local token = crypto.base64url_encode(crypto.random_bytes(32))
  local now = now_of(self)
  local rec = {
    op = "issue", hash = token_hash(token), name = principal.name,
    roles = json.array(copy_roles(principal.roles)), method = principal.method,
    user = self.users[principal.name] ~= nil or nil,
    issued = now, expires = ttl and math.ceil(now + ttl) or nil, -- never shorter than asked
  }
  if self.tokens_path then
    local ok, err = append_line(self.tokens_path, json.encode(rec))
    if not ok then return nil, "cannot store the token: " .. tostring(err) end
  end
  self.tokens[rec.hash] = rec
  return token, rec.expires
end

--- a:revoke(token) -> true | nil, msg, "NOT_FOUND"
function Auth:revoke(token)
  if type(token) ~= "string" then error("revoke: token must be a string", 2) end
  local h = token_hash(token)
  if not self.tokens[h] then return nil, "no such token", "NOT_FOUND" end
  if self.tokens_path then
    local ok, err = append_line(self.tokens_path, json.encode({ op = "revoke", hash = h }))
    if not ok then return nil, "cannot record the revocation: " .. tostring(err), "IO" end
  end
  self.tokens[h] = nil
  return true
end

-- The principal a token stands for, or nil when unknown, expired or its user gone.
function Auth:token_principal(token)
  local h = token_hash(token)
  local rec = self.tokens[h]
  if not rec then return nil end
  if rec.expires and rec.expires <= now_of(self) then
    self.tokens[h] = nil
    return nil
  end
  local user = self.users[rec.name]
  if rec.user and not user then return nil end
  -- A configured user's current roles count, not those at issue time.
  local roles = user and user.roles or rec.roles
  return { name = rec.name, roles = copy_roles(roles), method = "bearer" }
end

--- a:bearer(header_value[, opts]) -> principal | nil, status, code, message
-- "Bearer TOKEN". opts.parse is a surface's hook for its own token forms:
-- parse(credentials) -> the token this daemon issued | nil, status, code,
-- message (e.g. a surface's "PROVIDER//TOKEN" form).
function Auth:bearer(value, opts)
  if value == nil or value == "" then
    return fail(401, "AuthenticationRequired", "authentication required (Bearer token)")
  end
  local scheme, token = split_authorization(value)
  if scheme ~= "bearer" then
    return fail(401, "AuthenticationRequired", "malformed Authorization header: expected a Bearer token")
  end
  if opts and opts.parse then
    local parsed, status, code, message = opts.parse(token)
    if not parsed then return fail(status or 403, code or "TokenInvalid", message or "invalid token") end
    token = parsed
  end
  local p = token ~= "" and self:token_principal(token)
  if not p then return fail(403, "TokenInvalid", "invalid or expired token") end
  return p
end

--- a:static_token(value, allowed[, opts]) -> principal | nil, status, code, message
-- value against each configured token in constant time (digests compared,
-- so not even the length leaks). The principal is opts.name (default
-- "token") with opts.roles (default {"user"}), method "token".
function Auth:static_token(value, allowed, opts)
  opts = opts or {}
  if value == nil or value == "" then
    return fail(401, "AuthenticationRequired", "authentication required (token)")
  end
  local given, match = crypto.sha256(value), false
  for _, t in ipairs(allowed or {}) do
    if crypto.equal(given, crypto.sha256(tostring(t))) then match = true end
  end
  if not match then return fail(401, "TokenInvalid", "invalid token") end
  return { name = opts.name or "token", roles = copy_roles(opts.roles or { "user" }), method = "token" }
end

--- a:client_cert(tls) -> principal | nil, status, code, message
-- tls = req.tls as the HTTP server fills it ({subject=, verified=}).
function Auth:client_cert(tls)
  if type(tls) ~= "table" or not tls.subject or tls.subject == "" then
    return fail(401, "AuthenticationRequired", "a client certificate is required")
  end
  if tls.verified ~= true then
    return fail(403, "CertificateInvalid", "the client certificate was not verified")
  end
  local cn = common_name(tls.subject)
  if not cn or cn == "" then
    return fail(403, "CertificateInvalid", "the client certificate has no common name (CN)")
  end
  return { name = cn, roles = { "user" }, method = "mtls" }
end

local function method_name(m)
  if type(m) == "table" then return m[1] or m.method end
  return m
end

-- Is the credential for method m present in req at all?
local function present(m, req, scheme)
  if m == "basic" then return scheme == "basic" end
  if m == "bearer" then return scheme == "bearer" end
  if m == "token" then return req.headers.token ~= nil end
  if m == "mtls" then return type(req.tls) == "table" and (req.tls.subject or "") ~= "" end
  error("authenticate: unknown method " .. tostring(m), 3)
end

--- a:authenticate(req, methods) -> principal | nil, status, code, message, headers
-- methods: a list of "basic", "bearer", "token", "mtls", or tables with
-- options: {"bearer", parse = fn} (see bearer), {"token", tokens = {...},
-- name =, roles =}. The first method whose credential the request carries decides;
-- with none present the answer is 401.
function Auth:authenticate(req, methods)
  local headers = req.headers or {}
  local scheme, cred = split_authorization(headers.authorization)
  for _, m in ipairs(methods) do
    local name = method_name(m)
    if present(name, req, scheme) then
      local o = type(m) == "table" and m or {}
      if name == "basic" then return self:basic_credentials(cred) end
      if name == "bearer" then return self:bearer(headers.authorization, o) end
      if name == "token" then return self:static_token(headers.token, o.tokens, o) end
      return self:client_cert(req.tls)
    end
  end
  local names, hdrs = {}, nil
  for _, m in ipairs(methods) do
    local n = method_name(m)
    names[#names + 1] = n
    if n == "basic" then hdrs = BASIC_CHALLENGE end
  end
  if headers.authorization then
    return fail(401, "AuthenticationRequired", string.format(
      "unsupported Authorization scheme; use %s", table.concat(names, " or ")), hdrs)
  end
  return fail(401, "AuthenticationRequired",
    string.format("authentication required (%s)", table.concat(names, " or ")), hdrs)
end

--- auth.has_role(principal, role) -> boolean
function M.has_role(principal, role)
  for _, r in ipairs(principal and principal.roles or {}) do
    if r == role then return true end
  end
  return false
end

--- auth.owns(principal, job) -> true when the job is principal's or principal is admin.
function M.owns(principal, job)
  if type(principal) ~= "table" or type(job) ~= "table" then return false end
  return job.owner == principal.name or M.has_role(principal, "admin")
end

---------------------------------------------------------------------------
-- The embedded default's admin credential

--- auth.bootstrap(cfg) -> info | nil (users configured) | nil, err
-- With no users configured: on first start, generate an admin password and
-- a non-expiring token, keep their hashes under DATA/auth (0600) and the
-- plain credentials in DATA/auth/admin.txt (0600); returns
-- {user, password, token, file, new = true} so the daemon prints them once.
-- Later starts return {user, file, new = false} and print nothing secret.
-- Call it before auth.new, which then knows the admin.
function M.bootstrap(cfg)
  if next(cfg.users or {}) ~= nil then return nil end
  local dir = auth_dir(cfg)
  local hash_path, txt_path = dir .. "/admin.hash", dir .. "/admin.txt"
  if uv.fs_stat(hash_path) then
    return { user = BOOTSTRAP_USER, file = txt_path, new = false }
  end
  local ok, err = mkdir_p(dir, 448)
  if not ok then return nil, "cannot create " .. dir .. ": " .. tostring(err) end
  local password = crypto.base64url_encode(crypto.random_bytes(18))
  local hash, herr = crypto.hash_password(password)
  if not hash then return nil, "cannot hash the admin password: " .. tostring(herr) end
  local token = crypto.base64url_encode(crypto.random_bytes(32))
  local now = os.time()
  ok, err = append_line(dir .. "/tokens", json.encode({
    op = "issue", hash = token_hash(token), name = BOOTSTRAP_USER,
    roles = json.array({ "admin" }), method = "bootstrap", user = true, issued = now,
  }))
  if not ok then return nil, err end
  ok, err = write_file(txt_path, string.format(
    "# jobrt admin credentials, generated %s. Keep this file private.\n"
      .. "user: %s\npassword: %s\ntoken: %s\n",
    os.date("!%Y-%m-%dT%H:%M:%SZ", now), BOOTSTRAP_USER, password, token))
  if not ok then return nil, err end
  -- Written last: its presence marks the bootstrap as complete.
  ok, err = write_file(hash_path, BOOTSTRAP_USER .. ":" .. hash .. "\n")
  if not ok then return nil, err end
  return { user = BOOTSTRAP_USER, password = password, token = token, file = txt_path, new = true }
end

---------------------------------------------------------------------------
-- `jobrt hash-password`

local function read_password(prompt, tty)
  if tty then
    io.stderr:write(prompt)
    os.execute("stty -echo 2>/dev/null")
  end
  local line = io.stdin:read("l")
  if tty then
    os.execute("stty echo 2>/dev/null")
    io.stderr:write("\n")
  end
  if line then line = line:gsub("\r$", "") end
  return line
end

-- read_password(prompt, tty) -> the line typed (without echo on a
-- terminal) | nil at the end of input; jobrt login asks with it too.
M.read_password = read_password

--- auth.hash_password_command(args) -> exit status
-- Reads one password line from standard input (prompting twice, without
-- echo, on a terminal) and prints "scrypt$..." for users.NAME.password_hash.
function M.hash_password_command(args)
  args = args or {}
  for i = 2, #args do
    if args[i] == "-h" or args[i] == "--help" then
      io.stdout:write("usage: jobrt hash-password < password-file\n"
        .. "Reads a password from standard input and prints its hash for users.NAME.password_hash.\n")
      return 0
    end
    io.stderr:write("jobrt hash-password: unexpected argument ", tostring(args[i]), "\n")
    return 2
  end
  local tty = uv.guess_handle(0) == "tty"
  local pw = read_password("Password: ", tty)
  if not pw or pw == "" then
    io.stderr:write("jobrt hash-password: no password given on standard input\n")
    return 1
  end
  if tty and read_password("Again: ", tty) ~= pw then
    io.stderr:write("jobrt hash-password: the passwords differ\n")
    return 1
  end
  local hash, err = crypto.hash_password(pw)
  if not hash then
    io.stderr:write("jobrt hash-password: ", tostring(err), "\n")
    return 1
  end
  io.stdout:write(hash, "\n")
  return 0
end

return M
