-- jobrt.auth: HTTP Basic that does not say which part was wrong, issued
-- tokens (hashed, persisted, expiring, revocable), static tokens, client
-- certificates, the embedded default's admin credential, hash-password.
local auth = require("jobrt.auth")
local crypto = require("jobrt.crypto")
local uv = require("luv")

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/jobrt-test-auth-XXXXXX")
  local d = p:read("l")
  p:close()
  assert(d and d:match("^/tmp/jobrt%-test%-auth%-"))
  return d
end

local function rmdir(d)
  os.execute("rm -rf '" .. d .. "'")
end

local function basic(user, pw)
  return "Basic " .. crypto.base64_encode(user .. ":" .. pw)
end

local function mode_of(path)
  local st = uv.fs_stat(path)
  return st and (st.mode & 511)
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A config with two users and a clock the test moves.
local ALICE_HASH = crypto.hash_password("wonderland", { N = 1024 })
local function setup(t, dir)
  dir = dir or tmpdir()
  t.cleanup = function() rmdir(dir) end
  local clock = { now = 1000000 }
  local cfg = {
    data_dir = dir,
    users = {
      alice = { password_hash = ALICE_HASH, roles = { "user" } },
      ops = { password = "dev-only", roles = { "admin" } },
    },
  }
  local a = assert(auth.new(cfg, { now = function() return clock.now end }))
  return a, cfg, clock, dir
end

local function failure(t, want_status, want_code, ...)
  local p, status, code, msg = ...
  t.eq(p, nil, "should fail")
  t.eq(status, want_status, "status")
  t.eq(code, want_code, "code")
  return msg
end

return {
  { "basic: right passwords give principals", function(t)
    local a = setup(t)
    t.eq(a:basic(basic("alice", "wonderland")), { name = "alice", roles = { "user" }, method = "basic" })
    t.eq(a:basic(basic("alice", "wonderland")).name, "alice", "again, from the cache")
    t.eq(a:basic(basic("ops", "dev-only")), { name = "ops", roles = { "admin" }, method = "basic" })
    t.eq(a:basic("basic   " .. crypto.base64_encode("alice:wonderland")).name, "alice", "scheme case")
  end },

  { "basic: wrong password and unknown user get the same 403; malformed and missing 401", function(t)
    local a = setup(t)
    local m1 = failure(t, 403, "CredentialsInvalid", a:basic(basic("alice", "wonderlanD")))
    local m2 = failure(t, 403, "CredentialsInvalid", a:basic(basic("mallory", "wonderland")))
    local m3 = failure(t, 403, "CredentialsInvalid", a:basic(basic("ops", "dev-onlY")))
    local m4 = failure(t, 403, "CredentialsInvalid", a:basic(basic("alice", "")))
    t.eq(m1, m2, "no hint which part was wrong")
    t.eq(m1, m3)
    t.eq(m1, m4)
    t.ok(not m1:find("alice") and not m1:find("user not") and not m1:find("unknown"), m1)
    failure(t, 401, "AuthenticationRequired", a:basic(nil))
    failure(t, 401, "AuthenticationRequired", a:basic(""))
    failure(t, 401, "AuthenticationRequired", a:basic("Bearer abc"))
    failure(t, 401, "AuthenticationRequired", a:basic("Basic"))
    failure(t, 401, "AuthenticationRequired", a:basic("Basic !!!!"))
    failure(t, 401, "AuthenticationRequired", a:basic("Basic " .. crypto.base64_encode("no-colon")))
    failure(t, 401, "AuthenticationRequired", a:basic("Basic " .. crypto.base64_encode(":pw")))
    local _, _, _, _, headers = a:basic(nil)
    t.match(headers["WWW-Authenticate"], '^Basic realm="jobrt"')
  end },

  { "config: a malformed password_hash stops start-up with its key", function(t)
    local dir = tmpdir()
    t.cleanup = function() rmdir(dir) end
    local a, err = auth.new({ data_dir = dir, users = { bob = { password_hash = "md5$abc" } } })
    t.eq(a, nil)
    t.match(err, "users%.bob%.password_hash")
    t.match(err, "hash%-password")
  end },

  { "tokens: issue, bearer, openEO basic//, expiry, revoke", function(t)
    local a, _, clock = setup(t)
    local alice = a:basic(basic("alice", "wonderland"))
    local tok, expires = a:issue_token(alice, 60)
    t.match(tok, "^[%w_-]+$")
    t.eq(#tok, 43, "32 bytes, base64url")
    t.eq(expires, clock.now + 60)
    t.eq(a:bearer("Bearer " .. tok), { name = "alice", roles = { "user" }, method = "bearer" })
    t.eq(a:bearer("bearer " .. tok).name, "alice")
    failure(t, 403, "TokenInvalid", a:bearer("Bearer basic//" .. tok))
    -- openEO's "basic//TOKEN" is the surface's hook, not auth's knowledge.
    local openeo = { parse = require("api.openeo").auth[1].parse }
    t.eq(a:bearer("Bearer basic//" .. tok, openeo).name, "alice")
    t.eq(a:bearer("Bearer " .. tok, openeo).name, "alice", "bare token too")
    failure(t, 403, "TokenInvalid", a:bearer("Bearer oidc//" .. tok, openeo))
    failure(t, 401, "Nope", a:bearer("Bearer " .. tok, { parse = function() return nil, 401, "Nope", "no" end }))
    failure(t, 403, "TokenInvalid", a:bearer("Bearer " .. tok .. "x"))
    failure(t, 401, "AuthenticationRequired", a:bearer(nil))
    failure(t, 401, "AuthenticationRequired", a:bearer("Basic " .. tok))
    clock.now = clock.now + 59
    t.eq(a:bearer("Bearer " .. tok).name, "alice", "not yet expired")
    clock.now = clock.now + 1
    failure(t, 403, "TokenInvalid", a:bearer("Bearer " .. tok))
    local tok2 = a:issue_token(alice, 60)
    t.eq(a:revoke(tok2), true)
    failure(t, 403, "TokenInvalid", a:bearer("Bearer " .. tok2))
    t.eq(select(3, a:revoke(tok2)), "NOT_FOUND")
    t.err(function() a:issue_token(alice, -1) end, "ttl")
  end },

  { "tokens: stored hashed, fsynced 0600, survive a restart; expired ones pruned on load", function(t)
    local a, cfg, clock, dir = setup(t)
    local alice = a:basic(basic("alice", "wonderland"))
    local short = a:issue_token(alice, 10)
    local long = a:issue_token(alice, 3600)
    local forever = a:issue_token(alice, false)
    local revoked = a:issue_token(alice, 3600)
    a:revoke(revoked)
    local path = dir .. "/auth/tokens"
    t.eq(mode_of(path), 384, "tokens file is 0600")
    t.eq(mode_of(dir .. "/auth"), 448, "auth dir is 0700")
    local text = read(path)
    for _, tok in ipairs({ short, long, forever, revoked }) do
      t.ok(not text:find(tok, 1, true), "plain token not on disk")
      t.ok(text:find(crypto.hex(crypto.sha256(tok)), 1, true), "its hash is")
    end
    clock.now = clock.now + 100
    local b = assert(auth.new(cfg, { now = function() return clock.now end }))
    failure(t, 403, "TokenInvalid", b:bearer("Bearer " .. short))
    t.eq(b:bearer("Bearer " .. long).name, "alice")
    t.eq(b:bearer("Bearer " .. forever).name, "alice")
    failure(t, 403, "TokenInvalid", b:bearer("Bearer " .. revoked))
    local _, lines = read(path):gsub("\n", "")
    t.eq(lines, 2, "compacted to the live tokens")
    -- A torn last line (crash mid-append) is skipped, the rest kept.
    local f = io.open(path, "ab")
    f:write('{"op":"issue","hash":"ab')
    f:close()
    local c = assert(auth.new(cfg, { now = function() return clock.now end }))
    t.eq(c:bearer("Bearer " .. long).name, "alice")
  end },

  { "tokens: a removed user's tokens stop working; roles follow the config", function(t)
    local a, cfg, clock = setup(t)
    local tok = a:issue_token(a:basic(basic("alice", "wonderland")), 3600)
    cfg.users.alice.roles = { "user", "admin" }
    local b = assert(auth.new(cfg, { now = function() return clock.now end }))
    t.eq(b:bearer("Bearer " .. tok).roles, { "user", "admin" })
    cfg.users.alice = nil
    local c = assert(auth.new(cfg, { now = function() return clock.now end }))
    failure(t, 403, "TokenInvalid", c:bearer("Bearer " .. tok))
  end },

  { "static tokens and client certificates", function(t)
    local a = setup(t)
    local p = a:static_token("s3cret", { "other", "s3cret" })
    t.eq(p, { name = "token", roles = { "user" }, method = "token" })
    t.eq(a:static_token("s3cret", { "s3cret" }, { name = "kuscia", roles = { "admin" } }).name, "kuscia")
    failure(t, 401, "TokenInvalid", a:static_token("s3cre", { "other", "s3cret" }))
    failure(t, 401, "TokenInvalid", a:static_token("s3cret", {}))
    failure(t, 401, "AuthenticationRequired", a:static_token(nil, { "s3cret" }))
    t.eq(a:client_cert({ subject = "CN=alice,O=Example Org,C=DE", verified = true }),
      { name = "alice", roles = { "user" }, method = "mtls" })
    t.eq(a:client_cert({ subject = "O=Example,CN=bob\\, jr.+UID=7", verified = true }).name, "bob, jr.")
    t.eq(a:client_cert({ subject = "CN=caf\\C3\\A9", verified = true }).name, "café")
    failure(t, 403, "CertificateInvalid", a:client_cert({ subject = "CN=alice", verified = false }))
    failure(t, 403, "CertificateInvalid", a:client_cert({ subject = "O=NoName", verified = true }))
    failure(t, 401, "AuthenticationRequired", a:client_cert(nil))
    failure(t, 401, "AuthenticationRequired", a:client_cert({ subject = "", verified = false }))
  end },

  { "authenticate: the first method whose credential is present decides", function(t)
    local a = setup(t)
    local tok = a:issue_token({ name = "carol", roles = { "user" }, method = "mtls" }, 60)
    local function req(h, tls) return { headers = h, tls = tls } end
    t.eq(a:authenticate(req({ authorization = basic("alice", "wonderland") }), { "basic", "bearer" }).method,
      "basic")
    t.eq(a:authenticate(req({ authorization = "Bearer " .. tok }), { "basic", "bearer" }).name, "carol")
    t.eq(a:authenticate(req({ authorization = "Bearer basic//" .. tok }),
      { "basic", { "bearer", parse = require("api.openeo").auth[1].parse } }).name, "carol")
    t.eq(a:authenticate(req({ token = "k" }), { { "token", tokens = { "k" } } }).method, "token")
    t.eq(a:authenticate(req({}, { subject = "CN=dave", verified = true }), { "mtls", "bearer" }).name, "dave")
    failure(t, 403, "CredentialsInvalid",
      a:authenticate(req({ authorization = basic("alice", "x") }), { "basic", "bearer" }))
    local msg = failure(t, 401, "AuthenticationRequired", a:authenticate(req({}), { "basic", "bearer" }))
    t.match(msg, "basic or bearer")
    failure(t, 401, "AuthenticationRequired",
      a:authenticate(req({ authorization = "Digest x" }), { "basic", "bearer" }))
    failure(t, 401, "AuthenticationRequired",
      a:authenticate(req({ authorization = "Bearer " .. tok }), { "basic" }))
    t.err(function() a:authenticate(req({}), { "kerberos" }) end, "unknown method")
  end },

  { "owns: owner or admin", function(t)
    t.eq(auth.owns({ name = "alice", roles = { "user" } }, { owner = "alice" }), true)
    t.eq(auth.owns({ name = "bob", roles = { "user" } }, { owner = "alice" }), false)
    t.eq(auth.owns({ name = "ops", roles = { "admin" } }, { owner = "alice" }), true)
    t.eq(auth.owns(nil, { owner = "alice" }), false)
  end },

  { "bootstrap: admin credentials made once, kept 0600, usable, not repeated", function(t)
    local dir = tmpdir()
    t.cleanup = function() rmdir(dir) end
    local cfg = { data_dir = dir .. "/data", users = {} }
    local info = assert(auth.bootstrap(cfg))
    t.eq(info.new, true)
    t.eq(info.user, "admin")
    t.ok(#info.password >= 20 and #info.token >= 40)
    for _, f in ipairs({ "admin.txt", "admin.hash", "tokens" }) do
      t.eq(mode_of(dir .. "/data/auth/" .. f), 384, f .. " is 0600")
    end
    local txt = read(dir .. "/data/auth/admin.txt")
    t.ok(txt:find("password: " .. info.password, 1, true) and txt:find("token: " .. info.token, 1, true))
    t.ok(not read(dir .. "/data/auth/admin.hash"):find(info.password, 1, true), "hash file has no password")
    t.ok(not read(dir .. "/data/auth/tokens"):find(info.token, 1, true), "tokens file has no token")
    local a = assert(auth.new(cfg))
    t.eq(a:basic(basic("admin", info.password)), { name = "admin", roles = { "admin" }, method = "basic" })
    t.eq(a:bearer("Bearer " .. info.token).roles, { "admin" })
    failure(t, 403, "CredentialsInvalid", a:basic(basic("admin", info.password .. "x")))
    local again = assert(auth.bootstrap(cfg))
    t.eq(again, { user = "admin", file = dir .. "/data/auth/admin.txt", new = false })
    t.eq(read(dir .. "/data/auth/admin.txt"), txt, "unchanged")
    t.eq(auth.bootstrap({ data_dir = dir, users = { x = { password = "y" } } }), nil, "users configured")
  end },

  { "hash-password reads standard input and prints a usable hash", function(t)
    local dir = tmpdir()
    t.cleanup = function() rmdir(dir) end
    local script = dir .. "/hp.lua"
    local f = assert(io.open(script, "w"))
    f:write('os.exit(require("jobrt.auth").hash_password_command({"hash-password"}))\n')
    f:close()
    local bin = os.getenv("JOBRT_BIN") or "./jobrt"
    local p = io.popen("printf 'pässwörd\\n' | " .. bin .. " lua " .. script)
    local line = p:read("a")
    p:close()
    local hash = line:match("^(scrypt%$[^\n]+)\n$")
    t.ok(hash, line)
    t.eq(crypto.verify_password("pässwörd", hash or ""), true)
    p = io.popen("printf '' | " .. bin .. " lua " .. script .. " 2>&1; echo \"rc=$?\"")
    local outp = p:read("a")
    p:close()
    t.match(outp, "no password")
    t.match(outp, "rc=1")
  end },
}
