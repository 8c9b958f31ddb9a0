-- Signed URLs for result downloads: an HMAC-SHA-256 over the method, the
-- path and the expiry time, with a key kept in DATA/auth/url.key. A link
-- works without credentials until it expires (410) and stops working when
-- any of its parts is altered (403).
local crypto = require("jobrt.crypto")
local uv = require("luv")

local M = {}

local KEY_BYTES = 32

local Signer = {}
Signer.__index = Signer

local function load_key(path)
  local fd = uv.fs_open(path, "r", 0)
  if fd then
    local stat = uv.fs_fstat(fd)
    local key = stat and uv.fs_read(fd, stat.size, 0)
    uv.fs_close(fd)
    if key and #key == KEY_BYTES then return key end
    return nil, path .. ": not a signing key (expected " .. KEY_BYTES .. " bytes)"
  end
  local key = crypto.random_bytes(KEY_BYTES)
  local tmp = path .. ".tmp"
  local out, err = uv.fs_open(tmp, "w", 384) -- 0600
  if not out then return nil, "cannot create " .. tmp .. ": " .. tostring(err) end
  local ok = uv.fs_write(out, key, 0) == KEY_BYTES and uv.fs_fsync(out)
  uv.fs_close(out)
  if not ok or not uv.fs_rename(tmp, path) then
    return nil, "cannot write " .. path
  end
  return key
end

-- new(dir[, opts]) -> signer | nil, err. opts.now: a clock for tests.
function M.new(dir, opts)
  local ok, err, code = uv.fs_mkdir(dir, 448) -- 0700
  if not ok and code ~= "EEXIST" then return nil, "cannot create " .. dir .. ": " .. tostring(err) end
  local key, kerr = load_key(dir .. "/url.key")
  if not key then return nil, kerr end
  return setmetatable({ key = key, now = (opts and opts.now) or os.time }, Signer)
end

local function mac(self, method, path, expires)
  return crypto.base64url_encode(crypto.hmac_sha256(self.key, method .. "\n" .. path .. "\n" .. expires))
end

-- sign(method, path, ttl_seconds) -> "expires=T&signature=S", to append to
-- the path's query.
function Signer:sign(method, path, ttl)
  local expires = math.floor(self.now() + ttl)
  return string.format("expires=%d&signature=%s", expires, mac(self, method:upper(), path, expires))
end

-- verify(method, path, query) -> true | nil, status, code, message. query
-- is the parsed query table of the request.
function Signer:verify(method, path, query)
  local expires, signature = query.expires, query.signature
  if not expires or not signature then
    return nil, 403, "SignatureMissing", "this link needs its expires and signature parameters"
  end
  local t = tonumber(expires)
  if not t or not expires:match("^%d+$") then
    return nil, 403, "SignatureInvalid", "the link's signature does not match"
  end
  local expected = mac(self, method:upper() == "HEAD" and "GET" or method:upper(), path, expires)
  if not crypto.equal(expected, signature) then
    return nil, 403, "SignatureInvalid", "the link's signature does not match"
  end
  -- Checked after the signature, so an altered expiry reads as altered.
  if t < self.now() then
    return nil, 410, "LinkExpired", "this link expired; ask for the results again to get a new one"
  end
  return true
end

return M
