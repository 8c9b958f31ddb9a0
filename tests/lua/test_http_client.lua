-- jobrt.http_client against a loopback server that answers canned bytes:
-- Content-Length, chunked (in pieces, with a trailer), close-delimited and
-- empty bodies, a 100 Continue first, streaming with an early stop, and
-- the failures (not HTTP, cut short, silence, nobody listening).
local http = require("jobrt.http_client")
local uv = require("luv")

-- serve(answers) -> port, close: each connection reads the request's head
-- and is answered with the next entry of answers, a list of byte strings
-- written with a short pause between them; the connection then closes
-- (unless the entry sets keep = true).
local function serve(answers)
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", 0))
  local n = 0
  local open = {}
  server:listen(16, function()
    local c = uv.new_tcp()
    server:accept(c)
    open[#open + 1] = c
    n = n + 1
    local answer = answers[n] or { "HTTP/1.1 500 Nope\r\nContent-Length: 0\r\n\r\n" }
    local head = ""
    c:read_start(function(_, data)
      if not data or head:find("\r\n\r\n", 1, true) then return end
      head = head .. data
      if not head:find("\r\n\r\n", 1, true) then return end
      local i = 0
      local timer = uv.new_timer()
      timer:start(0, 20, function()
        i = i + 1
        if answer[i] and not c:is_closing() then
          c:write(answer[i])
        else
          timer:close()
          if not answer.keep and not c:is_closing() then c:close() end
        end
      end)
    end)
  end)
  return server:getsockname().port, function()
    for _, c in ipairs(open) do
      if not c:is_closing() then c:close() end
    end
    server:close()
  end
end

local function get(port, extra)
  local opts = { url = "http://127.0.0.1:" .. port .. "/x" }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return http.request(opts)
end

return {
  { "bodies: Content-Length, chunked in pieces, close-delimited, none", function(t)
    local port, close = serve({
      { "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"a\"", ": [1]}" },
      { "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n5\r\nhel", "lo\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n" },
      { "HTTP/1.1 200 OK\r\n\r\nuntil", " the end" },
      { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n" },
    })
    local r = assert(get(port))
    t.eq({ r.status, r.body, r.headers["content-type"] }, { 200, '{"a": [1]}', "application/json" })
    r = assert(get(port, { method = "POST", body = "{}" }))
    t.eq({ r.status, r.body, r.headers["x-a"] }, { 201, "hello world", "1, 2" })
    r = assert(get(port))
    t.eq({ r.status, r.body }, { 200, "until the end" })
    r = assert(get(port))
    t.eq({ r.status, r.body }, { 204, "" })
    close()
  end },

  { "streaming: chunks as they come, and stopping early", function(t)
    local port, close = serve({
      { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\none\r\n", "3\r\ntwo\r\n", "5\r\nthree\r\n", "0\r\n\r\n" },
      { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n", "3\r\ntwo\r\n", keep = true },
      { "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope" },
    })
    local got = {}
    local r = assert(get(port, { on_data = function(c) got[#got + 1] = c end }))
    t.eq({ r.status, r.body, got }, { 200, nil, { "one", "two", "three" } })
    got = {}
    r = assert(get(port, { on_data = function(c)
      got[#got + 1] = c
      return #got < 2 and true or false
    end }))
    t.eq(got, { "one", "two" })
    -- An error answer is collected, not streamed.
    r = assert(get(port, { on_data = function() error("not for errors") end }))
    t.eq({ r.status, r.body }, { 404, "nope" })
    close()
  end },

  { "failures: not HTTP, cut short, silence, nobody listening", function(t)
    local port, close = serve({
      { "SSH-2.0-OpenSSH\r\n\r\n" },
      { "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort" },
      { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" },
      { keep = true },
    })
    local r, err = get(port)
    t.eq(r, nil)
    t.match(err, "not an HTTP answer")
    r, err = get(port)
    t.match(err, "closed in the middle")
    r, err = get(port)
    t.match(err, "bad chunk size")
    r, err = get(port, { timeout = 0.2 })
    t.match(err, "no answer from 127%.0%.0%.1:%d+ within 0%.2 s")
    close()
    r, err = get(port)
    t.match(err, "cannot connect to 127%.0%.0%.1:%d+: connection refused")
  end },
}
