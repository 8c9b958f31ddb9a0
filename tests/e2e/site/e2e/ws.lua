-- WebSocket endpoints for tests/e2e/websocket.test.mjs: an echo, a stream
-- that ends with a chosen close code, a flood for a client that never
-- reads, and handlers that time out or fail after the upgrade.
return {
  name = "ws",
  auth = false,
  routes = function(r, ctx)
    -- Options from the query: ping (s), max_message, max_queued (bytes).
    local function opts(req)
      return {
        ping = tonumber(req.query.ping),
        max_message = tonumber(req.query.max_message),
        max_queued = tonumber(req.query.max_queued),
      }
    end

    -- Echoes every message in its kind; "close" closes with 4001.
    r:get("/echo", function(req, res)
      local ws = res:websocket(opts(req))
      for _ = 1, 100000 do
        local msg, kind, code = ws:receive()
        if not msg then
          ctx.log("info", "echo ended: " .. kind .. " " .. tostring(code))
          return
        end
        if msg == "close" then
          ws:close(4001, "asked to close")
          return
        end
        assert(ws:send(msg, kind))
      end
    end)

    -- n messages "1".."n", then a close with code and "done".
    r:get("/stream", function(req, res)
      local n = req:int("n", { min = 0, max = 100000 }) or 3
      local code = req:int("code", { min = 1000, max = 4999 }) or 1000
      local ws = res:websocket(opts(req))
      for i = 1, n do
        local ok, err = ws:send(tostring(i))
        if not ok then error("send " .. i .. ": " .. err) end
      end
      ws:close(code, "done")
    end)

    -- 64 KiB messages until the session ends; the client never reads.
    r:get("/flood", function(req, res)
      local ws = res:websocket(opts(req))
      local chunk = string.rep("x", 65536)
      local sent = 0
      for _ = 1, 1000000 do
        local ok = ws:send(chunk)
        if not ok then break end
        sent = sent + 1
        assert(ws:queued() <= 2 * 1024 * 1024, "queue over its bound: " .. ws:queued())
      end
      ctx.log("warn", string.format("flood ended after %d messages", sent))
    end)

    -- The first message within the timeout, answered with what came.
    r:get("/first", function(req, res)
      local ws = res:websocket(opts(req))
      local msg, kind = ws:receive(tonumber(req.query.timeout) or 5)
      ws:send(msg and ("got " .. kind .. ": " .. msg) or ("none: " .. kind))
      if req.query.reject and msg then
        ctx.fail(401, "Unauthorized", "signature does not verify: " .. msg)
      end
    end)

    -- Echoes after 50 ms of CPU per message: a session outlives the Lua
    -- deadline (1 s in the test's deployment) summed over its wakes.
    r:get("/busy", function(_, res)
      local ws = res:websocket()
      for _ = 1, 1000 do
        local msg = ws:receive()
        if not msg then return end
        local until_t = os.clock() + 0.05
        while os.clock() < until_t do end
        assert(ws:send(msg))
      end
    end)

    r:get("/boom", function(_, res)
      res:websocket()
      error("handler broke")
    end)
  end,
}
