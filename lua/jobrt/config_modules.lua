-- The deep pass of jobrt.config (`jobrt check` and start-up): each plugin's
-- and surface's module is loaded and its options are checked against the
-- schema the module declares; plugins the surfaces name must exist, and
-- those none names are warned about.
local S = require("jobrt.schema")

local M = {}

local is_map, join, suggest, sorted_keys = S.is_map, S.join, S.suggest, S.sorted_keys


-- Options every surface takes; jobrt.server reads them.
local SURFACE_FIELDS = {
  auth = { type = "list", allow_false = true,
    of = { type = "string", one_of = { "basic", "bearer", "token", "mtls" } } },
}

-- The plugins the binary carries, for suggestions.
local BUILTIN_PLUGINS = { "approve.image_allowlist", "approve.manual", "approve.quota", "approve.resource_caps",
  "approve.schedule", "estimate.price_table", "estimate.history", "publish.local", "publish.s3" }

-- The module's schema, or nil after saying what is wrong with it.
local function schema_of(c, mod, module, path, line)
  local schema = type(mod) == "table" and mod.schema or nil
  if schema == nil then return {} end
  local ok, err = S.declared(schema)
  if not ok then
    c:add(path, line, "module %s declares a broken schema: %s", module, err)
    return nil
  end
  return schema
end

local function unknown_module(c, use, path, line, err)
  local guess = suggest(use, BUILTIN_PLUGINS)
  c:add(path, line, 'unknown plugin module "%s"%s', use,
    guess and string.format(' (did you mean "%s"?)', guess) or (": " .. err))
end

local function check_plugin_modules(c, cfg, doc, loader)
  local pdoc = is_map(doc.plugins) and doc.plugins or {}
  local pline = c:line(doc, "plugins", 1)
  for _, name in ipairs(c:keys(pdoc)) do
    local entry, x = cfg.plugins[name], pdoc[name]
    if entry then
      local p, l = join("plugins", name), c:line(pdoc, name, pline)
      local upath, uline = join(p, "use"), c:line(x, "use", l)
      local module, err = loader:resolve(entry.use)
      if not module then
        unknown_module(c, entry.use, upath, uline, err)
      else
        local mod, lerr = loader:load(module, "plugin " .. name, "plugin")
        if mod == nil then
          c:add(upath, uline, "%s", lerr)
        else
          local schema = schema_of(c, mod, module, upath, uline)
          if schema then
            local before = #c.errors
            local options = S.record(c, schema, x, p, l, { use = true })
            options.use = nil
            if #c.errors == before then loader:keep_plugin(name, entry, mod, options) end
          end
        end
      end
    end
  end
end

-- A surface's own check of its options against the rest of the deployment
-- (mod.check(options, cfg) -> {{path = {key, ...}, message}, ...}), for
-- what a schema cannot say (e.g. that a name is one of sandbox.images);
-- each problem at the line of the key its path names.
local function check_options(c, mod, options, cfg, x, p, l)
  if type(mod.check) ~= "function" then return end
  local ok, problems = pcall(mod.check, options, cfg)
  if not ok then
    c:add(p, l, "the surface's check of its options failed: %s", tostring(problems))
    return
  end
  for _, problem in ipairs(type(problems) == "table" and problems or {}) do
    local path, line, node = p, l, x
    for _, k in ipairs(problem.path or {}) do
      line = c:line(node, k, line)
      path = join(path, k)
      node = type(node) == "table" and node[k] or nil
    end
    c:add(path, line, "%s", tostring(problem.message))
  end
end

local function check_surface_modules(c, cfg, doc, loader)
  local sdoc = is_map(doc.surfaces) and doc.surfaces or {}
  local sline = c:line(doc, "surfaces", 1)
  for _, name in ipairs(sorted_keys(cfg.surfaces)) do
    local spec = cfg.surfaces[name]
    local x = is_map(sdoc[name]) and sdoc[name] or nil
    local p, l = join("surfaces", name), c:line(sdoc, name, sline)
    local mpath, mline = join(p, "module"), c:line(x, "module", l)
    local mod, err = loader:load(spec.module, "surface " .. name)
    if mod == nil then
      c:add(mpath, mline, "%s", err)
    elseif type(mod) ~= "table" then
      c:add(mpath, mline, "module %s must return a table (with a routes function)", spec.module)
    else
      local schema = schema_of(c, mod, spec.module, mpath, mline)
      if schema then
        local fields = {}
        for k, f in pairs(schema) do fields[k] = f end
        for k, f in pairs(SURFACE_FIELDS) do fields[k] = fields[k] or f end
        local before = #c.errors
        local out = S.record(c, fields, x, p, l, { module = true, mount = true })
        out.module, out.mount = spec.module, spec.mount
        if #c.errors == before then check_options(c, mod, out, cfg, x, p, l) end
        cfg.surfaces[name] = out
        loader:keep_surface(name, spec.module, mod)
      end
    end
  end
end

-- check(c, cfg, doc) -> the plugins Loader, holding the modules loaded and
-- the options checked (Loader:keep_*), for the mount to use.
local function check_modules(c, cfg, doc)
  local loader = require("jobrt.plugins").new({
    lua_path = cfg.lua_path, deadline = cfg.lua.deadline, memory = cfg.lua.memory,
  })
  doc = is_map(doc) and doc or {}
  check_plugin_modules(c, cfg, doc, loader)
  -- Plugins the surfaces name (approval, estimators, ...): each must exist;
  -- those nobody names are worth a warning.
  local used = {}
  local names = sorted_keys(cfg.plugins)
  c.plugin_ref = function(name, path, line)
    if cfg.plugins[name] then
      used[name] = true
      return true
    end
    if loader:resolve(name) then return true end
    local guess = suggest(name, names)
    c:add(path, line, 'unknown plugin "%s" (%s)', name, guess and string.format('did you mean "%s"?', guess)
      or "not in plugins, nor a plugin module")
    return false
  end
  check_surface_modules(c, cfg, doc, loader)
  c.plugin_ref = nil
  local pdoc = is_map(doc.plugins) and doc.plugins or {}
  for _, name in ipairs(names) do
    if not used[name] then
      c:warn(join("plugins", name), c:line(pdoc, name, c:line(doc, "plugins", 1)),
        "no surface names this plugin (it is never loaded)")
    end
  end
  return loader
end

M.check = check_modules

return M
