-- jobrt.router: templates, precedence, methods, percent-decoding, query
-- strings and mounting under a prefix.
local router = require("jobrt.router")

local function h() end

return {
  { "templates match and decode parameters", function(t)
    local r = router.new()
    local list = r:add("GET", "/jobs", h, { name = "list" })
    local one = r:add("GET", "/jobs/{job_id}", h)
    local results = r:add("GET", "/jobs/{job_id}/results", h)
    local file = r:add("GET", "/files/{path*}", h)
    local root = r:add("GET", "/", h)
    local route, params = r:match("GET", "/jobs")
    t.eq(route, list)
    t.eq(route.meta, { name = "list" })
    t.eq(params, {})
    route, params = r:match("GET", "/jobs/j%201")
    t.eq(route, one)
    t.eq(params, { job_id = "j 1" })
    t.eq(route.template, "/jobs/{job_id}")
    t.eq(route.method, "GET")
    route, params = r:match("GET", "/jobs/a%2Fb/results")
    t.eq(route, results)
    t.eq(params, { job_id = "a/b" })
    route, params = r:match("GET", "/files/a/b%20c/d.txt")
    t.eq(route, file)
    t.eq(params, { path = "a/b c/d.txt" })
    t.eq(r:match("GET", "/"), root)
    t.eq({ r:match("GET", "/files/") }, { nil, "not_found" })
    t.eq({ r:match("GET", "/jobs/") }, { nil, "not_found" })
    t.eq({ r:match("GET", "/jobs//results") }, { nil, "not_found" })
    t.eq({ r:match("GET", "/jobs/x/results/") }, { nil, "not_found" })
    t.eq({ r:match("GET", "/nope") }, { nil, "not_found" })
    t.eq({ r:match("GET", "") }, { nil, "not_found" })
    t.eq({ r:match("GET", "/jobs/%zz") }, { nil, "bad_request", 'malformed percent-escape "%zz" at byte 1' })
    t.eq({ r:match("GET", "/jobs/ab%4") }, { nil, "bad_request", 'malformed percent-escape "%4" at byte 3' })
  end },

  { "precedence: literal, then {name}, then {name*}, left to right", function(t)
    local r = router.new()
    local rest = r:add("GET", "/jobs/{id}/{file*}", h)
    local param = r:add("GET", "/jobs/{id}", h)
    local latest = r:add("GET", "/jobs/latest", h)
    local logs = r:add("GET", "/jobs/{id}/logs", h)
    local two = r:add("GET", "/jobs/{id}/{part}", h)
    local left = r:add("GET", "/{kind}/x/y", h)
    t.eq(r:match("GET", "/jobs/latest"), latest)
    t.eq(r:match("GET", "/jobs/other"), param)
    t.eq(r:match("GET", "/jobs/1/logs"), logs)
    t.eq(r:match("GET", "/jobs/1/status"), two)
    t.eq(r:match("GET", "/jobs/1/a/b"), rest)
    -- "/jobs" is a literal in the first segment, "{kind}" is not.
    t.eq(r:match("GET", "/jobs/x/y"), two)
    t.eq(r:match("GET", "/other/x/y"), left)
    local order = {}
    for _, route in ipairs(r:routes()) do order[#order + 1] = route.template end
    t.eq(order, { "/jobs/latest", "/jobs/{id}", "/jobs/{id}/logs", "/jobs/{id}/{part}",
                  "/jobs/{id}/{file*}", "/{kind}/x/y" })
  end },

  { "methods: 405 with the allow list, HEAD falls back to GET", function(t)
    local r = router.new()
    local get = r:add("GET", "/jobs/{id}", h)
    local del = r:add("DELETE", "/jobs/{job_id}", h)
    local post = r:add("POST", "/jobs/latest", h)
    t.eq(r:match("HEAD", "/jobs/1"), get)
    local route, params = r:match("DELETE", "/jobs/1")
    t.eq(route, del)
    t.eq(params, { job_id = "1" })
    t.eq({ r:match("PUT", "/jobs/1") }, { nil, "method_not_allowed", { "DELETE", "GET", "HEAD", "OPTIONS" } })
    -- A less specific template still serves the methods the literal lacks.
    t.eq(r:match("GET", "/jobs/latest"), get)
    t.eq(r:match("POST", "/jobs/latest"), post)
    t.eq({ r:match("PATCH", "/jobs/latest") },
      { nil, "method_not_allowed", { "DELETE", "GET", "HEAD", "OPTIONS", "POST" } })
    t.eq({ r:match("OPTIONS", "/jobs/1") }, { nil, "method_not_allowed", { "DELETE", "GET", "HEAD", "OPTIONS" } })
    local options = r:add("OPTIONS", "/jobs/{id}", h)
    t.eq(r:match("OPTIONS", "/jobs/1"), options)
    local head = r:add("HEAD", "/jobs/{id}", h)
    t.eq(r:match("HEAD", "/jobs/1"), head)
    t.eq({ r:match("GET", "/x") }, { nil, "not_found" })
  end },

  { "programming errors raise", function(t)
    local r = router.new()
    r:add("GET", "/jobs/{id}", h)
    t.err(function() r:add("GET", "/jobs/{name}", h) end, "GET /jobs/{name} is already routed %(as /jobs/{id}%)")
    t.err(function() r:add("get", "/x", h) end, "upper%-case HTTP method")
    t.err(function() r:add("GET", "jobs", h) end, 'malformed template "jobs"')
    t.err(function() r:add("GET", "/jobs/", h) end, 'malformed template "/jobs/"')
    t.err(function() r:add("GET", "/jobs/{id}.json", h) end, "malformed template")
    t.err(function() r:add("GET", "/a/{}", h) end, "malformed template")
    t.err(function() r:add("GET", "/a//b", h) end, "malformed template")
    t.err(function() r:add("GET", "/a/{x*}/b", h) end, "{x%*} must be the last segment")
    t.err(function() r:add("GET", "/a/{x}/{x}", h) end, "{x} appears twice")
    t.err(function() r:add("GET", 5, h) end, "template must be a string")
  end },

  { "parse_query", function(t)
    local q, multi = router.parse_query("state=running&limit=10&tag=a&tag=b+c&flag&=x&&e=&enc=%41%2b%3D%26")
    t.eq(q, { state = "running", limit = "10", tag = "a", flag = "", e = "", enc = "A+=&" })
    t.eq(multi, { state = { "running" }, limit = { "10" }, tag = { "a", "b c" }, flag = { "" },
                  e = { "" }, enc = { "A+=&" } })
    t.eq({ router.parse_query("") }, { {}, {} })
    t.eq({ router.parse_query(nil) }, { {}, {} })
    t.eq(router.parse_query("a=b=c"), { a = "b=c" })
    t.eq(router.parse_query("k%20ey=v"), { ["k ey"] = "v" })
    t.eq({ router.parse_query("a=%zz") }, { nil, 'malformed percent-escape "%zz" at byte 3 in the query' })
    t.eq({ router.parse_query("a=1&b=%4") }, { nil, 'malformed percent-escape "%4" at byte 7 in the query' })
    t.eq({ router.parse_query("%") }, { nil, 'malformed percent-escape "%" at byte 1 in the query' })
  end },

  { "unescape and join", function(t)
    t.eq(router.unescape("a%20b+c%2F"), "a b+c/")
    t.eq({ router.unescape("%G0") }, { nil, 'malformed percent-escape "%G0" at byte 1' })
    t.eq(router.join("/", "/jobs"), "/jobs")
    t.eq(router.join("/", "/"), "/")
    t.eq(router.join("/jobrt/v1", "/"), "/jobrt/v1")
    t.eq(router.join("/jobrt/v1", "/jobs/{id}"), "/jobrt/v1/jobs/{id}")
    t.eq(router.join("/openeo/1.2/", "/jobs"), "/openeo/1.2/jobs")
    t.err(function() router.join("jobrt", "/x") end, 'prefix must start with "/"')
    t.err(function() router.join("/", "x") end, 'template must start with "/"')
    local r = router.new()
    local route = r:add("GET", router.join("/jobrt/v1", "/"), h)
    t.eq(r:match("GET", "/jobrt/v1"), route)
  end },

  { "integer: the one parser of integer query parameters", function(t)
    t.eq({ router.integer(nil) }, {})
    t.eq({ router.integer("") }, {})
    t.eq(router.integer("0"), 0)
    t.eq(router.integer("42"), 42)
    t.eq(math.type(router.integer("42")), "integer")
    t.eq(router.integer("7", { min = 1, max = 10 }), 7)
    t.eq(router.integer("-3", { min = -5 }), -3)
    for _, bad in ipairs({ "-1", "1e3", "0x10", " 1", "1.0", "x", "99999999999999999999" }) do
      local n, err = router.integer(bad)
      t.eq(n, nil, bad)
      t.match(err, "^must be an integer at least 0, got ", bad)
    end
    t.eq({ router.integer("0", { min = 1 }) }, { nil, "must be an integer at least 1, got 0" })
    t.eq({ router.integer("11", { min = 1, max = 10 }) }, { nil, "must be an integer from 1 to 10, got 11" })
  end },
}
