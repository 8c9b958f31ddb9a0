-- Loading deployment Lua: search path, sandbox, bounds, clear errors.
local plugins = require("jobrt.plugins")

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local site = here .. "../fixtures/plugins"

local function loader(opts)
  opts = opts or {}
  opts.lua_path = opts.lua_path or { site }
  return plugins.new(opts)
end

return {
  { "a plugin loads from lua_path and requires its own modules", function(t)
    local mod = assert(loader():load("site.greeter"))
    t.eq(mod.greet("ops"), "hello, ops")
  end },

  { "plugins see no io and no os.exit", function(t)
    local mod = assert(loader():load("site.greeter"))
    t.eq(mod.env_io, nil)
    t.eq(mod.env_os_exit, nil)
  end },

  { "built-in modules come from the binary", function(t)
    local src = require("jobrt.runtime").embedded("lua/jobrt/server.lua")
    t.ok(src and src:find("request pipeline"), "server.lua is embedded")
  end },

  { "a missing module names every place searched", function(t)
    local mod, err = loader():load("site.nothing")
    t.eq(mod, nil)
    t.match(err, "site/nothing.lua")
    t.match(err, "%(built%-in%)")
  end },

  { "a syntax error names file and line", function(t)
    local mod, err = loader():load("site.broken")
    t.eq(mod, nil)
    t.match(err, "broken.lua:2:")
  end },

  { "a top level that never ends is stopped", function(t)
    local mod, err = loader({ deadline = 0.05 }):load("site.spin")
    t.eq(mod, nil)
    t.match(err, "time limit exceeded")
  end },

  { "shared libraries are read-only to plugins", function(t)
    local mod, err = loader():load("site.tamper")
    t.eq(mod, nil)
    t.match(err, "read%-only")
    t.ok(require("jobrt.json").encode({ 1 }) == "[1]", "json untouched")
  end },

  { "plugin(): a YAML name resolves to its policies module and options", function(t)
    local plugins_cfg = { prices = { use = "estimate.price_table", currency = "EUR", cpu_second = 0.5 } }
    local mod, opts = loader():plugin(plugins_cfg, "prices")
    t.ok(type(mod) == "table" and type(mod.estimate) == "function", "the estimator module")
    -- Checked against the module's schema and completed with its defaults.
    t.eq(opts, { currency = "EUR", cpu_second = 0.5, gib_second = 0.00005, output_byte = 0.000000001,
      base_seconds = 1, seconds_per_node = 0.05, bytes_per_node = 4096, max_nodes = 2000, unestimable = {},
      surfaces = {}, images = {} })
    local none, err = loader():plugin({ prices = { use = "estimate.price_table", cpu_second = "abc" } }, "prices")
    t.eq(none, nil)
    t.eq(err, 'plugin prices: cpu_second: expected a number, got "abc"')
  end },

  { "plugins may not require jobrt.core; surfaces may", function(t)
    local mod, err = loader():plugin({ c = { use = "site.uses_core" } }, "c")
    t.eq(mod, nil)
    t.match(err, "uses_core%.lua:3: plugin c may not require jobrt%.core")
    local surface = assert(loader():load("site.uses_core", "surface s"))
    t.ok(surface.core ~= nil, "a surface gets the core")
    -- Every built-in plugin loads as a plugin.
    for _, name in ipairs({ "approve.image_allowlist", "approve.manual", "estimate.price_table", "publish.local" }) do
      local options = name == "approve.image_allowlist" and { images = { "host" } } or nil
      local p, perr = loader():plugin({ x = { use = name, images = options and options.images } }, "x")
      t.ok(p, name .. ": " .. tostring(perr))
    end
  end },

  { "plugin(): a bare module name works without an entry; a deployment's own module too", function(t)
    local mod, opts = loader():plugin({}, "publish.local")
    t.ok(type(mod) == "table" and type(mod.publish) == "function", "the publisher module")
    t.eq(opts, { url_ttl = 3600, license = "proprietary" })
    local own = assert(loader():plugin({ hi = { use = "site.greeter" } }, "hi"))
    t.eq(own.greet("x"), "hello, x")
    -- A module without a schema takes no options.
    local none, err = loader():plugin({ hi = { use = "site.greeter", who = "ops" } }, "hi")
    t.eq(none, nil)
    t.eq(err, "plugin hi: who: unknown key (this takes no options)")
  end },

  { "plugin(): a missing module or a missing use is an error naming the plugin", function(t)
    local mod, err = loader():plugin({ p = { use = "estimate.nothing" } }, "p")
    t.eq(mod, nil)
    t.match(err, "^plugin p %(estimate.nothing%)")
    mod, err = loader():plugin({ q = { currency = "EUR" } }, "q")
    t.eq(mod, nil)
    t.match(err, 'missing "use"')
  end },

  { "price_table: costs, duration and size; EstimateComplexity when unbounded", function(t)
    local est = assert(loader():plugin({}, "estimate.price_table"))
    local job = { tasks = { { alias = "a", timeout = 60, resources = { cpu = 2000, memory = 1024 ^ 3 } } } }
    local e = assert(est.estimate(job, { options = { cpu_second = 1, gib_second = 0.5, output_byte = 0,
      base_seconds = 10, seconds_per_node = 0 }, complexity = { nodes = 3 } }))
    t.eq(e.duration, 10)
    t.eq(e.costs, 2 * 10 * 1 + 1 * 10 * 0.5)
    t.eq(e.size, 3 * 4096)
    local capped = assert(est.estimate(job, { options = { base_seconds = 1000 }, complexity = { nodes = 1 } }))
    t.eq(capped.duration, 60)
    local none, err = est.estimate({ tasks = { { alias = "a" } } }, { options = {} })
    t.eq(none, nil)
    t.eq(err.code, "EstimateComplexity")
    none, err = est.estimate(job, { options = { unestimable = { "run_udf" } },
      complexity = { nodes = 2, processes = { run_udf = true } } })
    t.eq(err.code, "EstimateComplexity")
  end },

  { "publish.local: a STAC item with signed hrefs, reproducibility asset and canonical link", function(t)
    local pub = assert(loader():plugin({}, "publish.local"))
    local item = pub.publish({ id = "j1", created_at = "2026-01-01T00:00:00.000Z" }, "graph",
      { { name = "result.json", size = 3 } }, {
        url = function(name) return "http://h/a/" .. name .. "?expires=1&signature=s" end,
        process_url = "http://h/p?sig", item_url = "http://h/i?sig", expires = "2026-01-01T01:00:00Z",
        status = "finished", null = require("jobrt.json").null,
      })
    t.eq(item.type, "Feature")
    t.eq(item.assets["result.json"].href, "http://h/a/result.json?expires=1&signature=s")
    t.eq(item.assets["result.json"].type, "application/json")
    t.eq(item.assets["process.json"].roles, { "reproducibility" })
    t.eq(item.links[1], { rel = "canonical", href = "http://h/i?sig", type = "application/json" })
    t.eq(item.properties.expires, "2026-01-01T01:00:00Z")
  end },

  { "module names cannot walk the file system", function(t)
    local mod, err = loader():load("../etc/passwd")
    t.eq(mod, nil)
    t.match(err, "invalid module name")
  end },
}
