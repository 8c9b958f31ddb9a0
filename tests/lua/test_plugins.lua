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

  { "module names cannot walk the file system", function(t)
    local mod, err = loader():load("../etc/passwd")
    t.eq(mod, nil)
    t.match(err, "invalid module name")
  end },
}
