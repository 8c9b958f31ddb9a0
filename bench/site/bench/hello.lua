-- A tiny surface for bench/http.sh: one JSON route, so the benchmark
-- measures routing, the Lua handler and JSON encoding, nothing else.
return {
  name = "bench",
  auth = false, -- a public route: the benchmark measures serving, not logins
  routes = function(r, ctx)
    r:get("/hello/{name}", function(req, res)
      res:json({ hello = req.params.name, n = #req.query })
    end)
  end,
}
