-- Signed result links: valid until they expire, refused when altered.
local signed_url = require("jobrt.signed_url")
local router = require("jobrt.router")

local function tmpdir()
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  return dir
end

local function query(qs)
  return (router.parse_query(qs))
end

return {
  { "a signed link verifies until it expires", function(t)
    local dir = tmpdir()
    t.cleanup = function() os.execute("rm -rf " .. dir) end
    local clock = 1000
    local s = assert(signed_url.new(dir, { now = function() return clock end }))
    local qs = s:sign("GET", "/files/j1/out.json", 60)
    t.match(qs, "^expires=1060&signature=[%w_%-]+$")
    t.eq(s:verify("GET", "/files/j1/out.json", query(qs)), true)
    t.eq(s:verify("HEAD", "/files/j1/out.json", query(qs)), true)
    clock = 1061
    t.eq({ s:verify("GET", "/files/j1/out.json", query(qs)) },
      { nil, 410, "LinkExpired", "this link expired; ask for the results again to get a new one" })
  end },

  { "altered parts are refused with 403", function(t)
    local dir = tmpdir()
    t.cleanup = function() os.execute("rm -rf " .. dir) end
    local s = assert(signed_url.new(dir, { now = function() return 1000 end }))
    local qs = s:sign("GET", "/files/j1/out.json", 60)
    local q = query(qs)
    t.eq(select(2, s:verify("GET", "/files/j1/other.json", q)), 403)
    t.eq(select(2, s:verify("DELETE", "/files/j1/out.json", q)), 403)
    t.eq(select(2, s:verify("GET", "/files/j1/out.json", query(qs:gsub("1060", "9999")))), 403)
    t.eq(select(2, s:verify("GET", "/files/j1/out.json", query(qs .. "x"))), 403)
    t.eq(select(3, s:verify("GET", "/files/j1/out.json", {})), "SignatureMissing")
  end },

  { "the key persists across restarts and is private", function(t)
    local dir = tmpdir()
    t.cleanup = function() os.execute("rm -rf " .. dir) end
    local a = assert(signed_url.new(dir, { now = function() return 1000 end }))
    local b = assert(signed_url.new(dir, { now = function() return 1000 end }))
    t.eq(a:sign("GET", "/x", 10), b:sign("GET", "/x", 10))
    local p = io.popen("stat -c %a " .. dir .. "/url.key")
    t.eq(p:read("l"), "600")
    p:close()
    -- Another directory, another key.
    local other = tmpdir()
    local c = assert(signed_url.new(other, { now = function() return 1000 end }))
    os.execute("rm -rf " .. other)
    t.ok(c:sign("GET", "/x", 10) ~= a:sign("GET", "/x", 10))
  end },
}
