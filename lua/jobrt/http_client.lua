-- An HTTP/1.1 client for the command line (jobrt login, jobrt jobs) and
-- publishers (S3): one request per connection on luv's TCP, waiting inside
-- a coroutine (jobrt.async), with a whole-answer or a streaming (chunk by
-- chunk) body; a request body may be a range of a file, streamed from disk
-- through the thread pool with a bounded number of writes in flight.
-- https goes through the runtime's TLS client session (jobrt.tls, the same
-- OpenSSL code as the daemon's), verified against the system CA store or
-- JOBRT_CA_FILE.
local async = require("jobrt.async")
local runtime = require("jobrt.runtime")
local uv = require("luv")

local M = {}

local MAX_HEAD = 64 * 1024
local FILE_CHUNK = 1024 * 1024 -- bytes read from a body file at a time
local WRITES_IN_FLIGHT = 4      -- chunks written but not yet taken by the kernel

-- parse_url(url) -> {scheme, host, port, path} | nil, err
function M.parse_url(url)
  if type(url) ~= "string" then return nil, "no URL given" end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, string.format("%q is not a URL (http://HOST[:PORT])", url) end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, string.format("%q: only http:// and https:// URLs are supported", url)
  end
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([^:@]+):?(%d*)$")
  end
  if not host or host == "" then return nil, string.format("%q: no host", url) end
  port = tonumber(port ~= "" and port or nil) or (scheme == "https" and 443 or 80)
  if port < 1 or port > 65535 then return nil, string.format("%q: bad port", url) end
  return { scheme = scheme, host = host, port = port, path = path:gsub("#.*$", "") }
end

-- A connection: bytes in arrive in a queue the reading coroutine waits on.
local Conn = {}
Conn.__index = Conn

-- more(ms) -> true | nil, "timeout" | nil, err: waits for the next bytes
-- (or the end of the stream). Callbacks run only while the coroutine waits,
-- so what is already in inbuf was seen before the call.
function Conn:more(ms)
  if self.err then return nil, self.err end
  if self.eof then return true end
  local timer
  local why = async.wait(function(wake)
    self.waker = wake
    if ms then
      timer = uv.new_timer()
      timer:start(ms, 0, function() wake("timeout") end)
    end
  end)
  self.waker = nil
  if timer then
    timer:stop()
    timer:close()
  end
  if why == "timeout" then return nil, "timeout" end
  if self.err then return nil, self.err end
  return true
end

function Conn:wake()
  if self.waker then self.waker("input") end
end

-- Bytes from the socket: through TLS when there is a session.
function Conn:on_bytes(data)
  if not self.tls then
    self.inbuf = self.inbuf .. data
    return
  end
  local plain, out, state = self.tls:feed(data)
  if out ~= "" then self.tcp:write(out) end
  if state == "failed" then
    self.err = "TLS: " .. tostring(plain)
    return
  end
  self.inbuf = self.inbuf .. plain
  if state == "closed" then self.eof = true end
  if self.tls:established() and self.pending_out then
    local pending = self.pending_out
    self.pending_out = nil
    self:send(pending)
  end
end

-- send(data[, done]): done(err) when the kernel took it (or failed).
function Conn:send(data, done)
  if self.tls then
    if not self.tls:established() then
      self.pending_out = (self.pending_out or "") .. data
      if done then done() end
      return
    end
    local out, err = self.tls:encrypt(data)
    if not out then
      self.err = "TLS: " .. tostring(err)
      if done then done(self.err) end
      return
    end
    data = out
  end
  if done then
    local ok, err = self.tcp:write(data, function(werr) done(werr) end)
    if not ok then done(err or "write failed") end
  else
    self.tcp:write(data)
  end
end

-- handshake(ms) -> true | nil, err: waits until a TLS session is set up,
-- so that a large body is not queued in memory before it is.
function Conn:handshake(ms)
  while self.tls and not self.tls:established() do
    if self.eof then return nil, "TLS: the connection closed during the handshake" end
    local ok, err = self:more(ms)
    if not ok then return nil, err == "timeout" and "TLS: the handshake timed out" or err end
  end
  return true
end

local function fs(op, ...)
  local args = table.pack(...)
  return async.wait(function(wake)
    args[args.n + 1] = function(err, v) wake(v, err) end
    local req, err = uv[op](table.unpack(args, 1, args.n + 1))
    if not req then wake(nil, err) end
  end)
end

-- send_file(f) -> true | nil, err: f = {path, offset, length}; the bytes
-- read a chunk at a time while earlier chunks are being written.
function Conn:send_file(f)
  local fd, err = fs("fs_open", f.path, "r", 0)
  if not fd then return nil, "cannot open " .. tostring(f.path) .. ": " .. tostring(err) end
  local off, left = f.offset or 0, f.length
  local flying, waiter, failed = 0, nil, nil
  local function written(werr)
    flying = flying - 1
    if werr and not failed then failed = tostring(werr) end
    if waiter then
      local w = waiter
      waiter = nil
      w()
    end
  end
  while left > 0 and not failed and not self.err and not self.eof do
    local data, rerr = fs("fs_read", fd, math.min(left, FILE_CHUNK), off)
    if not data then failed = "cannot read " .. tostring(f.path) .. ": " .. tostring(rerr) break end
    if data == "" then failed = tostring(f.path) .. " is shorter than announced" break end
    off, left = off + #data, left - #data
    flying = flying + 1
    self:send(data, written)
    data = nil -- luacheck: ignore (the chunk is the writer's now)
    while flying >= WRITES_IN_FLIGHT and not failed do
      async.wait(function(wake) waiter = wake end)
    end
  end
  while flying > 0 do
    async.wait(function(wake) waiter = wake end)
  end
  fs("fs_close", fd)
  if failed then return nil, failed end
  return true
end

function Conn:close()
  if self.tcp and not self.tcp:is_closing() then self.tcp:close() end
end

-- The next n bytes, waiting for them.
function Conn:take(n, ms)
  while #self.inbuf < n do
    if self.eof then return nil, "the connection closed in the middle of the answer" end
    local ok, err = self:more(ms)
    if not ok then return nil, err end
  end
  local s = self.inbuf:sub(1, n)
  self.inbuf = self.inbuf:sub(n + 1)
  return s
end

-- A line ending in CRLF (without it), waiting for it.
function Conn:line(ms)
  while true do
    local i = self.inbuf:find("\r\n", 1, true)
    if i then
      local l = self.inbuf:sub(1, i - 1)
      self.inbuf = self.inbuf:sub(i + 2)
      return l
    end
    if #self.inbuf > MAX_HEAD then return nil, "a line of the answer is too long" end
    if self.eof then return nil, "the connection closed in the middle of the answer" end
    local ok, err = self:more(ms)
    if not ok then return nil, err end
  end
end

local function resolve(host, port)
  return async.wait(function(wake)
    local ok, err = uv.getaddrinfo(host, tostring(port), { socktype = "stream" }, function(err, res)
      wake(res, err)
    end)
    if not ok then wake(nil, err) end
  end)
end

-- luv's errors are names ("ECONNREFUSED") or "NAME: text"; people read words.
local WORDS = {
  ECONNREFUSED = "connection refused (is the daemon running?)", ECONNRESET = "connection reset",
  ETIMEDOUT = "timed out", EHOSTUNREACH = "host unreachable", ENETUNREACH = "network unreachable",
  EAI_NONAME = "unknown host", EPIPE = "connection closed",
}

local function plain_error(err)
  err = tostring(err)
  local name, text = err:match("^(E[%u_]+):?%s*(.*)$")
  if name and WORDS[name] then return WORDS[name] end
  return text ~= nil and text ~= "" and text or err
end

-- connect(u, ms, opts) -> conn | nil, err
local function connect(u, ms, opts)
  local addrs, rerr = resolve(u.host, u.port)
  if not addrs or #addrs == 0 then
    return nil, string.format("cannot resolve %s: %s", u.host, plain_error(rerr or "no address"))
  end
  local last
  for _, a in ipairs(addrs) do
    local tcp = uv.new_tcp()
    local timer = uv.new_timer()
    local err = async.wait(function(wake)
      timer:start(ms, 0, function() wake("timed out") end)
      local ok, cerr = tcp:connect(a.addr, a.port, function(e) wake(e or false) end)
      if not ok then wake(cerr) end
    end)
    timer:stop()
    timer:close()
    if not err then
      local conn = setmetatable({ tcp = tcp, inbuf = "", eof = false }, Conn)
      if u.scheme == "https" then
        local tls = require("jobrt.tls")
        local session, first = tls.client(u.host, opts.ca_file or os.getenv("JOBRT_CA_FILE"), opts.cert, opts.key)
        if not session then
          tcp:close()
          return nil, first
        end
        conn.tls = session
        tcp:write(first)
      end
      tcp:read_start(function(rerr2, data)
        if rerr2 then
          conn.err = plain_error(rerr2)
        elseif data then
          conn:on_bytes(data)
        else
          conn.eof = true
        end
        conn:wake()
      end)
      return conn
    end
    if not tcp:is_closing() then tcp:close() end
    last = err
  end
  return nil, string.format("cannot connect to %s:%d: %s", u.host, u.port, plain_error(last))
end

-- host_header(u) -> the Host header's value for a parsed URL (what a
-- request signature covers).
function M.host_header(u)
  local host = u.host:find(":", 1, true) and ("[" .. u.host .. "]") or u.host
  local default = (u.scheme == "https" and 443) or 80
  if u.port ~= default then host = host .. ":" .. u.port end
  return host
end

local function request_head(u, method, headers, body_length)
  local lines = {
    string.format("%s %s HTTP/1.1", method, u.path ~= "" and u.path or "/"),
    "Host: " .. M.host_header(u),
    "User-Agent: jobrt/" .. tostring(runtime.version),
    "Connection: close",
  }
  local has = {}
  for k, v in pairs(headers or {}) do
    lines[#lines + 1] = k .. ": " .. v
    has[k:lower()] = true
  end
  if not has.accept then lines[#lines + 1] = "Accept: application/json" end
  if body_length then lines[#lines + 1] = "Content-Length: " .. body_length end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- Reads the status line and headers: status, headers (lower-case names).
local function read_head(conn, ms)
  local status_line, err = conn:line(ms)
  if not status_line then return nil, err end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "not an HTTP answer: " .. status_line:sub(1, 80) end
  local headers, size = {}, #status_line
  while true do
    local l, lerr = conn:line(ms)
    if not l then return nil, lerr end
    if l == "" then break end
    size = size + #l
    if size > MAX_HEAD then return nil, "the answer's headers are too large" end
    local name, value = l:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
  end
  if status == 100 then return read_head(conn, ms) end
  return status, headers
end

-- Calls emit(chunk) for each piece of the body; returns true | nil, err.
local function read_body(conn, method, status, headers, ms, emit)
  if method == "HEAD" or status == 204 or status == 304 then return true end
  local te = (headers["transfer-encoding"] or ""):lower()
  if te:find("chunked", 1, true) then
    while true do
      local l, err = conn:line(ms)
      if not l then return nil, err end
      local hex = l:match("^(%x+)")
      local n = hex and #hex <= 12 and tonumber(hex, 16)
      if not n then return nil, "bad chunk size in the answer" end
      if n == 0 then
        repeat
          local t, terr = conn:line(ms)
          if not t then return nil, terr end
        until t == ""
        return true
      end
      local data, derr = conn:take(n, ms)
      if not data or #data < n then return nil, derr or "the connection closed in the middle of the answer" end
      if emit(data) == false then return true end
      local crlf, cerr = conn:take(2, ms)
      if crlf ~= "\r\n" then return nil, cerr or "bad chunk end in the answer" end
    end
  end
  local len = tonumber(headers["content-length"])
  local left = len or math.huge
  while left > 0 do
    if conn.inbuf == "" then
      if conn.eof then
        if len then return nil, "the connection closed in the middle of the answer" end
        return true
      end
      local ok, err = conn:more(ms)
      if not ok then return nil, err end
    end
    local piece = len and conn.inbuf:sub(1, left) or conn.inbuf
    conn.inbuf = conn.inbuf:sub(#piece + 1)
    if len then left = left - #piece end
    if piece ~= "" and emit(piece) == false then return true end
  end
  return true
end

-- request{method =, url =, headers =, body =, body_file = {path =, offset
-- =, length =} (instead of body: that range of a file, streamed), timeout
-- = seconds (default 30; for a stream, the longest silence), on_data =
-- function(chunk) -> false to stop, ca_file =, cert =, key = (https: the
-- CA bundle, default JOBRT_CA_FILE or the system store; a client
-- certificate and key), on_head = function(status, headers) (called once
-- the head is read, before any of the body)} -> {status =, headers =,
-- body =} | nil, err. With
-- on_data the body goes to it as it arrives (for 2xx answers; others are
-- collected) and the result has no body. A server that answers before the
-- whole body is sent (an error) is heard. Call it from a coroutine.
function M.request(opts)
  local u, err = M.parse_url(opts.url)
  if not u then return nil, err end
  local ms = math.floor((opts.timeout or 30) * 1000)
  local file = opts.body_file
  if file ~= nil and (type(file) ~= "table" or type(file.path) ~= "string"
      or math.type(file.length) ~= "integer" or file.length < 0) then
    return nil, "body_file: {path = string, offset = integer, length = integer} expected"
  end
  local conn
  conn, err = connect(u, ms, opts)
  if not conn then return nil, err end
  local ok, herr = conn:handshake(ms)
  if not ok then
    conn:close()
    return nil, herr
  end
  local method = opts.method or "GET"
  local length = file and file.length or (opts.body and #opts.body) or nil
  conn:send(request_head(u, method, opts.headers, length) .. (opts.body or ""))
  local send_err
  if file then
    local sent, serr = conn:send_file(file)
    send_err = not sent and serr or nil
  end
  -- A server may refuse before reading the whole body: its answer, if it
  -- came, says why.
  local status, headers = read_head(conn, send_err and math.min(ms, 2000) or ms)
  if not status and send_err then
    conn:close()
    return nil, send_err
  end
  if not status then
    conn:close()
    local why = headers
    if why == "timeout" then why = string.format("no answer from %s:%d within %g s", u.host, u.port, ms / 1000) end
    return nil, why
  end
  local parts = {}
  if opts.on_head then opts.on_head(status, headers) end
  local stream = opts.on_data and status >= 200 and status < 300
  local ok, berr = read_body(conn, method, status, headers, ms, function(chunk)
    if stream then return opts.on_data(chunk) end
    parts[#parts + 1] = chunk
  end)
  conn:close()
  if not ok then
    if berr == "timeout" then berr = string.format("the answer stalled for %g s", ms / 1000) end
    return nil, berr
  end
  return { status = status, headers = headers, body = not stream and table.concat(parts) or nil }
end

return M
