-- A deployment's own endpoints, used by the HTTP end-to-end tests: echo,
-- a handler that loops, one that raises, one that waits, one that streams.
local async = require("jobrt.async")
local json = require("jobrt.json")

return {
  name = "probe",
  -- Open to anyone: these tests are about HTTP, not credentials.
  auth = false,
  error_body = function(status, code, message)
    return { error = { status = status, code = code, message = message } }
  end,
  routes = function(r, ctx)
    r:post("/echo", function(req, res)
      local doc = req.headers["content-type"] == "application/json" and req:json() or nil
      res:json({ length = #req.body, body = req.body, doc = doc, query = req.query })
    end)
    r:get("/items/{id}", function(req, res)
      res:json({ id = req.params.id, method = req.method })
    end)
    r:delete("/items/{id}", function(req, res)
      res:status(204)
    end)
    r:get("/headers", function(req, res)
      -- n headers of 40 bytes each: more than the answer's head buffer.
      local n = tonumber(req.query.n or "1")
      for i = 1, n do res:header("X-Probe-" .. i, string.rep("v", 40)) end
      res:json({ n = n })
    end)
    r:get("/loop", function()
      while true do pcall(function() while true do end end) end
    end)
    r:get("/hog", function()
      local t = {}
      for i = 1, 1e9 do t[i] = string.rep("x", 64) .. i end
    end)
    r:get("/raise", function()
      error("boom")
    end)
    r:get("/fail", function()
      ctx.fail(409, "Conflict", "the probe refuses")
    end)
    r:get("/wait", function(req, res)
      async.sleep(tonumber(req.query.ms or "100") / 1000)
      res:json({ waited = tonumber(req.query.ms or "100") })
    end)
    r:get("/stream", function(req, res)
      local w = res:stream(200, { ["Content-Type"] = "application/x-ndjson" })
      for i = 1, tonumber(req.query.n or "3") do
        w:write(json.encode({ seq = i }) .. "\n")
        async.sleep(0.01)
      end
      w:close()
    end)
    r:get("/whoami", function(req, res)
      res:json({ tls = req.tls or json.null })
    end)
    r:get("/escape", function(req, res)
      -- A plugin must not reach io, os.execute or the shared string table.
      res:json({
        io = type(io), execute = type(os.execute), debug = type(debug),
        require_io = pcall(require, "io"),
        string_meta = getmetatable("") == false,
        loadbin = (load(string.dump(function() end), "x", "b")) == nil,
      })
    end)
  end,
}
