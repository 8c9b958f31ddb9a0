-- Loads the Lua that deployments may change: surfaces (api/), policies,
-- estimators and publishers (policies/) and a deployment's own modules.
-- Each is found first in the folders of `lua_path`, then among the sources
-- embedded in the binary; it is loaded as text only, into an allow-listed
-- environment of its own, and its top level runs under the Lua bounds.
local async = require("jobrt.async")
local runtime = require("jobrt.runtime")
local schema = require("jobrt.schema")

local M = {}

-- Libraries module code may require; they are handed out read-only.
-- Surfaces drive the core; plugins (policies, estimators, publishers) get
-- what they need of it through their ctx, so they may not require it.
local LIBRARIES = {
  surface = {
    ["jobrt.json"] = true, ["jobrt.router"] = true, ["jobrt.units"] = true,
    ["jobrt.async"] = true, ["jobrt.core"] = true, ["jobrt.jobs"] = true,
    ["jobrt.crypto"] = true, ["jobrt.json_span"] = true, ["jobrt.model"] = true,
    ["jobrt.suggest"] = true, ["jobrt.tables"] = true, ["jobrt.publication"] = true, ["lpeg"] = true,
  },
  plugin = {
    ["jobrt.json"] = true, ["jobrt.router"] = true, ["jobrt.units"] = true,
    ["jobrt.async"] = true, ["jobrt.tables"] = true, ["lpeg"] = true,
  },
}

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error(name .. " is read-only", 2) end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local src = f:read("a")
  f:close()
  return src
end

-- Candidate relative paths for a module name.
local function candidates(name)
  local rel = name:gsub("%.", "/")
  return { rel .. ".lua", rel .. "/init.lua" }
end

local Loader = {}
Loader.__index = Loader

-- new{lua_path = {...}, deadline = s, memory = bytes, log = fn}
function M.new(opts)
  return setmetatable({
    lua_path = opts.lua_path or {},
    deadline = opts.deadline or 5,
    memory = opts.memory or 64 * 1024 * 1024,
    log = opts.log or function(level, msg) runtime.log(level, msg) end,
    -- What jobrt.config's deep pass loaded and checked, handed to the mount
    -- so a start loads and checks each module once (see keep_*).
    kept = { plugins = {}, surfaces = {} },
  }, Loader)
end

-- keep_plugin(name, entry, module, options): the deployment's plugin name
-- (its entry of the plugins section) is module with these checked,
-- complete options; plugin() hands them out while the entry is the same.
function Loader:keep_plugin(name, entry, module, options)
  self.kept.plugins[name] = { entry = entry, module = module, options = options }
end

-- keep_surface(name, module_name, value): the surface's module, loaded.
function Loader:keep_surface(name, module_name, value)
  self.kept.surfaces[name] = { module = module_name, value = value }
end

-- surface(name, module_name) -> module value | nil, err: the one the
-- configuration pass loaded, else loaded now.
function Loader:surface(name, module_name)
  local kept = self.kept.surfaces[name]
  if kept and kept.module == module_name then return kept.value end
  return self:load(module_name, "surface " .. name)
end

-- find(name) -> source, chunkname | nil, err
function Loader:find(name)
  if type(name) ~= "string" or not name:match("^[%w_]+[%w_%.]*$") or name:find("%.%.") then
    return nil, string.format("invalid module name %q", tostring(name))
  end
  local tried = {}
  for _, rel in ipairs(candidates(name)) do
    for _, dir in ipairs(self.lua_path) do
      local path = dir:gsub("/$", "") .. "/" .. rel
      local src = read_file(path)
      if src then return src, "@" .. path end
      tried[#tried + 1] = path
    end
    local src = runtime.embedded(rel)
    if src then return src, "@" .. rel end
    tried[#tried + 1] = "(built-in) " .. rel
  end
  return nil, string.format("module %q not found; tried: %s", name, table.concat(tried, ", "))
end

-- A fresh allow-listed environment. `require` inside it gives the
-- read-only libraries above (those of kind: "surface", the default, or
-- "plugin") and loads other modules into this same environment (so a
-- surface may be split into files).
function Loader:environment(label, kind)
  local libraries = LIBRARIES[kind or "surface"] or error("unknown module kind " .. tostring(kind), 2)
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, xpcall = xpcall, rawequal = rawequal, rawlen = rawlen,
    rawget = rawget, rawset = rawset, setmetatable = setmetatable,
    getmetatable = getmetatable, _VERSION = _VERSION,
    string = copy(string), table = copy(table), math = copy(math),
    utf8 = copy(utf8), coroutine = copy(coroutine),
    os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime },
  }
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    self.log("info", label .. ": " .. table.concat(parts, "\t"))
  end
  env.load = function(chunk, name, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then return nil, "only text chunks may be loaded" end
    return load(chunk, name, "t", chunk_env or env)
  end
  env._G = env
  local loaded = {}
  env.require = function(name)
    if LIBRARIES.surface[name] and not libraries[name] then
      error(string.format("%s may not require %s (a plugin sees the core through its ctx)", label, name), 2)
    end
    if libraries[name] then
      if not loaded[name] then loaded[name] = readonly(require(name), name) end
      return loaded[name]
    end
    if loaded[name] == nil then
      local src, chunkname = self:find(name)
      if not src then error(chunkname, 2) end
      local chunk, err = load(src, chunkname, "t", env)
      if not chunk then error(err, 2) end
      loaded[name] = true -- a cycle sees true, as with the standard require
      local value = chunk(name)
      loaded[name] = value == nil and true or value
    end
    return loaded[name]
  end
  return env
end

-- load(name[, label[, kind]]) -> module value | nil, err
-- Runs the module's top level bounded; errors name the file and line.
-- kind: "surface" (the default) or "plugin" (see LIBRARIES).
function Loader:load(name, label, kind)
  local src, chunkname = self:find(name)
  if not src then return nil, chunkname end
  local env = self:environment(label or name, kind)
  local chunk, err = load(src, chunkname, "t", env)
  if not chunk then return nil, err end
  local ok, value, kind = async.call(chunk, { deadline = self.deadline, memory = self.memory }, name)
  if not ok then
    if type(value) ~= "string" then value = tostring(value) end
    if kind == "deadline" then value = value .. " (while loading " .. name .. ")" end
    return nil, value
  end
  if value == nil then return nil, chunkname:sub(2) .. ": module " .. name .. " returned nothing" end
  return value, env
end

-- resolve(use) -> the module name of a plugin's `use` | nil, err:
-- "estimate.price_table" is policies.estimate.price_table, a deployment's
-- own module under lua_path is given by its full name.
function Loader:resolve(use)
  if type(use) ~= "string" or use == "" then return nil, string.format("invalid module name %q", tostring(use)) end
  local policies_err
  if not use:match("^policies%.") then
    local found, err = self:find("policies." .. use)
    if found then return "policies." .. use end
    policies_err = err
  end
  local found, err = self:find(use)
  if found then return use end
  return nil, policies_err and (policies_err .. "; " .. err) or err
end

-- plugin(plugins, name) -> module, options | nil, err
-- Resolves a plugin named by a surface's configuration (e.g. openEO's
-- `estimator: prices`): `plugins` is the YAML's plugins section, where
-- `prices: {use: estimate.price_table, currency: EUR}` names the module
-- policies.estimate.price_table (a deployment's own module under lua_path
-- may be given by its full name) and the options, every key but `use`.
-- A name absent from the section is taken as a `use` value without options.
-- A plugin the configuration pass kept (keep_plugin) is handed out as it
-- was loaded and checked there, with a copy of its options; any other is
-- loaded (bounded, text only, without jobrt.core) on every call, its
-- options checked against its `schema` and completed with the defaults it
-- declares (a module without one takes no options).
function Loader:plugin(plugins, name)
  if type(name) ~= "string" or name == "" then
    return nil, string.format("invalid plugin name %q", tostring(name))
  end
  local entry = type(plugins) == "table" and plugins[name] or nil
  local kept = self.kept.plugins[name]
  if kept and entry ~= nil and kept.entry == entry then
    return kept.module, schema.deep_copy(kept.options)
  end
  local use, options = name, {}
  if entry ~= nil then
    if type(entry) ~= "table" or type(entry.use) ~= "string" then
      return nil, string.format('plugin %s: missing "use" (the plugin module)', name)
    end
    use = entry.use
    for k, v in pairs(entry) do
      if k ~= "use" then options[k] = v end
    end
  end
  local module, rerr = self:resolve(use)
  if not module then return nil, string.format("plugin %s (%s): %s", name, use, rerr) end
  local value, err = self:load(module, "plugin " .. name, "plugin")
  if value == nil then return nil, string.format("plugin %s (%s): %s", name, use, err) end
  local complete, serr = schema.apply(type(value) == "table" and value.schema or nil, options, "plugin " .. name)
  if not complete then return nil, serr end
  return value, complete
end

return M
