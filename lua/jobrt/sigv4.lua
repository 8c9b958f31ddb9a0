-- AWS Signature Version 4 (the S3 flavour) with jobrt.crypto's SHA-256
-- and HMAC-SHA-256: signed request headers and presigned URLs. Pure
-- functions of their arguments (the time included), so that they can be
-- checked against published vectors and an independent signer.
local crypto = require("jobrt.crypto")

local M = {}

M.UNSIGNED = "UNSIGNED-PAYLOAD"
M.EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
M.MAX_EXPIRES = 7 * 24 * 3600 -- what S3 accepts for a presigned URL

local function hex(s) return crypto.hex(s) end

--- sigv4.sha256_hex(data) -> the lower-case hex SHA-256 of data
function M.sha256_hex(data) return hex(crypto.sha256(data)) end

--- sigv4.encode(s[, keep_slash]) -> s percent-encoded as SigV4 wants it:
-- everything but A-Z a-z 0-9 - . _ ~ (and / in a path).
function M.encode(s, keep_slash)
  return (tostring(s):gsub("[^%w%-%._~/]", function(c) return string.format("%%%02X", c:byte()) end)
    :gsub("/", keep_slash and "/" or "%%2F"))
end

local function amz_date(now)
  return os.date("!%Y%m%dT%H%M%SZ", now), os.date("!%Y%m%d", now)
end

local function signing_key(secret, day, region, service)
  local k = crypto.hmac_sha256("AWS4" .. secret, day)
  k = crypto.hmac_sha256(k, region)
  k = crypto.hmac_sha256(k, service)
  return crypto.hmac_sha256(k, "aws4_request")
end

-- query: {name = value} -> the canonical query string (sorted, encoded).
local function canonical_query(query)
  local pairs_ = {}
  for k, v in pairs(query or {}) do pairs_[#pairs_ + 1] = { M.encode(k), M.encode(v) } end
  table.sort(pairs_, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for i, p in ipairs(pairs_) do pairs_[i] = p[1] .. "=" .. p[2] end
  return table.concat(pairs_, "&")
end

-- headers: {Name = value} -> canonical headers, signed header names.
local function canonical_headers(headers)
  local names, values = {}, {}
  for k, v in pairs(headers) do
    local n = k:lower()
    names[#names + 1] = n
    values[n] = tostring(v):gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " ")
  end
  table.sort(names)
  local lines = {}
  for i, n in ipairs(names) do lines[i] = n .. ":" .. values[n] .. "\n" end
  return table.concat(lines), table.concat(names, ";")
end

local function check(r)
  for _, k in ipairs({ "method", "host", "path", "access_key", "secret_key", "region" }) do
    if type(r[k]) ~= "string" or r[k] == "" then error("sigv4: " .. k .. " must be a non-empty string", 3) end
  end
end

--- sigv4.canonical(r, headers, payload) -> canonical request, signed
-- header names (for tests and for a server's own check).
function M.canonical(r, headers, payload)
  local ch, signed = canonical_headers(headers)
  return table.concat({ r.method, r.path, canonical_query(r.query), ch, signed, payload }, "\n"), signed
end

local function signature(r, now, canonical)
  local stamp, day = amz_date(now)
  local service = r.service or "s3"
  local scope = day .. "/" .. r.region .. "/" .. service .. "/aws4_request"
  local to_sign = table.concat({ "AWS4-HMAC-SHA256", stamp, scope, M.sha256_hex(canonical) }, "\n")
  return hex(crypto.hmac_sha256(signing_key(r.secret_key, day, r.region, service), to_sign)), scope
end

--- sigv4.sign(r) -> headers: the request's headers with x-amz-date,
-- x-amz-content-sha256 and Authorization added. r: method, host (the
-- Host header's value), path (already encoded), query ({name = value},
-- unencoded), headers (extra headers to sign), payload (hex SHA-256 of
-- the body, or sigv4.UNSIGNED; default: of an empty body), access_key,
-- secret_key, session_token (optional), region, service (default "s3"),
-- now (epoch seconds; default os.time()).
function M.sign(r)
  check(r)
  local now = r.now or os.time()
  local payload = r.payload or M.EMPTY_SHA256
  local headers = {}
  for k, v in pairs(r.headers or {}) do headers[k] = v end
  headers["host"] = r.host
  headers["x-amz-date"] = (amz_date(now))
  headers["x-amz-content-sha256"] = payload
  if r.session_token then headers["x-amz-security-token"] = r.session_token end
  local canonical, signed = M.canonical(r, headers, payload)
  local sig, scope = signature(r, now, canonical)
  headers["authorization"] = string.format("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
    r.access_key, scope, signed, sig)
  headers["host"] = nil -- the client writes Host itself, from the URL
  return headers
end

--- sigv4.presign(r) -> the query string (without "?") of a presigned
-- URL for r (method, host, path, access_key, secret_key, region, expires
-- seconds (1 .. 7 days), now, session_token): whoever has the URL may make
-- that request until it expires, the host the only header signed.
function M.presign(r)
  check(r)
  local expires = math.tointeger(r.expires)
  if not expires or expires < 1 or expires > M.MAX_EXPIRES then
    error("sigv4: expires must be 1 .. " .. M.MAX_EXPIRES .. " seconds", 2)
  end
  local now = r.now or os.time()
  local stamp, day = amz_date(now)
  local service = r.service or "s3"
  local query = {}
  for k, v in pairs(r.query or {}) do query[k] = v end
  query["X-Amz-Algorithm"] = "AWS4-HMAC-SHA256"
  query["X-Amz-Credential"] = r.access_key .. "/" .. day .. "/" .. r.region .. "/" .. service .. "/aws4_request"
  query["X-Amz-Date"] = stamp
  query["X-Amz-Expires"] = tostring(expires)
  query["X-Amz-SignedHeaders"] = "host"
  if r.session_token then query["X-Amz-Security-Token"] = r.session_token end
  local q = { method = r.method, path = r.path, query = query }
  local canonical = M.canonical(q, { host = r.host }, M.UNSIGNED)
  local sig = signature(r, now, canonical)
  return canonical_query(query) .. "&X-Amz-Signature=" .. sig
end

--- sigv4.query(q) -> the canonical query string of {name = value}
M.query = canonical_query

return M
