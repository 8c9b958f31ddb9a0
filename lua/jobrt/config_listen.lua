-- The deployment file's `listen`: addresses ("ADDR:PORT", [IPv6]:PORT) and
-- listeners with TLS, whose files are read and parsed as the listener will
-- (OpenSSL, through jobrt.http) when the check is deep.
local S = require("jobrt.schema")
local types = require("jobrt.config_types")

local M = {}

local is_null, is_map, is_seq, join = S.is_null, S.is_map, S.is_seq, S.join
local record = types.record


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

M.parse_address = parse_address
M.check = check_listen

return M
