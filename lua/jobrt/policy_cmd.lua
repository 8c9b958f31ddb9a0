-- `jobrt policy test FILE JOB.json [-c DEPLOYMENT] [--plugin NAME]
-- [--owner NAME]`: one plugin (an approval policy or an estimator) run on
-- one job document, as the daemon would run it (loaded as text into the
-- plugins' environment, its options checked against its schema, bounded
-- by the deployment's lua.deadline and lua.memory), printing its decision
-- and reason, or its estimate. With -c, the options are those of the
-- deployment's plugins entry whose `use` is FILE (or --plugin NAME). The
-- policy's core view is an empty store in a temporary folder, so a quota
-- sees an owner with no jobs. Exit status: 0 accept (or an estimate), 1
-- reject, 3 wait, 2 a usage error, 4 the plugin failed.
local async = require("jobrt.async")
local json = require("jobrt.json")

local M = {}

M.usage = "policy test FILE JOB.json [-c FILE] [--plugin NAME] [--owner NAME]"
M.summary = "run one approval policy or estimator on a job document"
M.help = [[
Runs a plugin file (an approval policy or an estimator) on a job document
(JSON, the native API's job), as the daemon would: loaded as text into the
plugins' environment, its options checked against its schema and completed
with their defaults, bounded by lua.deadline and lua.memory. Prints the
decision and the reason (and, for a wait, what would make the daemon ask
again), or the estimate as JSON.

  -c, --config FILE  take the plugin's options from this deployment: the
                     plugins entry whose `use` names FILE (or --plugin)
  --plugin NAME      the plugins entry to take the options of
  --owner NAME       the job's owner (default: the document's, else "tester")

The policy's view of the core is an empty store in a temporary folder.
Exit status: 0 accept (or an estimate), 1 reject, 3 wait, 4 the plugin
failed to load or raised, 2 a usage error.]]

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

-- The plugins entry of cfg for file (its use resolves to file) or name.
local function entry_for(cfg, loader, file, name)
  if name then
    local e = cfg.plugins[name]
    if not e then return nil, "the deployment has no plugins." .. name end
    return e, name
  end
  local want = file:gsub("^%./", "")
  for pname, e in pairs(cfg.plugins) do
    local module = loader:resolve(e.use)
    local chunk
    if module then chunk = select(2, loader:find(module)) end
    local path = type(chunk) == "string" and chunk:gsub("^@", ""):gsub("^%./", "") or nil
    local function ends(a, b) return a == b or a:sub(-#b - 1) == "/" .. b end
    if path and (ends(path, want) or ends(want, path)) then return e, pname end
  end
  return nil, "no plugins entry of the deployment uses " .. file .. " (give --plugin NAME)"
end

local function describe_when(when)
  if type(when) ~= "table" then return "only an approve releases it" end
  local parts = {}
  if when.owner then parts[#parts + 1] = "when one of the owner's jobs ends" end
  if tonumber(when.at) then parts[#parts + 1] = "at " .. os.date("!%Y-%m-%dT%H:%M:%SZ", tonumber(when.at)) end
  return "asked again " .. table.concat(parts, " or ")
end

-- Units as the native API reads them: "500m" cpu, "4GiB", "30s".
local function translate_units(job)
  local units = require("jobrt.units")
  local parsers = { cpu = units.cpu, memory = units.bytes, disk = units.bytes }
  for i, t in ipairs(type(job.tasks) == "table" and job.tasks or {}) do
    local where = string.format("tasks[%d]", i - 1)
    if type(t) == "table" and type(t.resources) == "table" then
      for key, parse in pairs(parsers) do
        local v = t.resources[key]
        if type(v) == "string" or type(v) == "number" then
          local n, err = parse(v)
          if not n then return nil, string.format("%s.resources.%s: %s", where, key, err) end
          t.resources[key] = n
        end
      end
    end
    if type(t) == "table" and (type(t.timeout) == "string" or type(t.timeout) == "number") then
      local n, err = units.duration(t.timeout)
      if not n then return nil, where .. ".timeout: " .. err end
      t.timeout = n
    end
  end
  return job
end

-- run(opts, out, err) -> exit status. opts: file, job (path), config,
-- plugin, owner.
function M.run(o, out, err)
  local config = require("jobrt.config")
  local cfg
  if o.config then
    local problems
    cfg, problems = config.load(o.config)
    if not cfg then
      for _, line in ipairs(config.format_errors(problems)) do err(line .. "\n") end
      return 2
    end
  else
    cfg = config.default()
  end
  local plugins = require("jobrt.plugins")
  local dir = o.file:match("^(.*)/[^/]*$") or "."
  local loader = plugins.new({ lua_path = cfg.lua_path, deadline = cfg.lua.deadline, memory = cfg.lua.memory })
  local options = {}
  if o.config or o.plugin then
    local e, name = entry_for(cfg, loader, o.file, o.plugin)
    if not e then err("jobrt policy: " .. name .. "\n") return 2 end
    for k, v in pairs(e) do if k ~= "use" then options[k] = v end end
  end
  local src, rerr = read(o.file)
  if not src then err("jobrt policy: " .. tostring(rerr) .. "\n") return 2 end
  -- Modules it requires are found beside it, then as the daemon finds them.
  loader.lua_path = { dir, table.unpack(cfg.lua_path or {}) }
  local env = loader:environment("plugin " .. o.file, "plugin")
  local chunk, lerr = load(src, "@" .. o.file, "t", env)
  if not chunk then err(lerr .. "\n") return 4 end
  local bounds = { deadline = cfg.lua.deadline, memory = cfg.lua.memory }
  local ok, mod = async.call(chunk, bounds, o.file)
  if not ok then err(tostring(mod) .. "\n") return 4 end
  local schema = require("jobrt.schema")
  local complete, serr = schema.apply(type(mod) == "table" and mod.schema or nil, options, "plugin " .. o.file)
  if not complete then err(serr .. "\n") return 2 end

  local text, jerr = read(o.job)
  if not text then err("jobrt policy: " .. tostring(jerr) .. "\n") return 2 end
  local job, derr = json.decode(text)
  if type(job) ~= "table" then err("jobrt policy: " .. o.job .. ": " .. tostring(derr or "not a JSON object") .. "\n") return 2 end
  local owner = o.owner or job.owner or "tester"
  local surface = type(job.surface) == "string" and surface
  job.owner, job.surface, job.start = nil, nil, nil
  local model = require("jobrt.model")
  local valid, verr = translate_units(job)
  if valid then valid, verr = model.validate(job) end
  if not valid then err("jobrt policy: " .. o.job .. ": " .. tostring(verr) .. "\n") return 2 end
  job.owner, job.surface = owner, surface

  local core = require("jobrt.core")
  local tmp = os.tmpname()
  os.remove(tmp)
  local opened, oerr = core.open({ data_dir = tmp, node = { gpu = 0, max_tasks = 1 } })
  if not opened then err("jobrt policy: cannot open a scratch store: " .. tostring(oerr) .. "\n") return 4 end
  local submit = require("jobrt.submit")
  local view = submit.view(surface, core)
  local status = 0
  local approve = type(mod) == "function" and mod or (type(mod) == "table" and mod.approve)
  if type(approve) == "function" then
    local ctx = { options = complete, principal = { name = owner, roles = { "user" } }, core = view,
                  surface = surface, now = os.time(), recheck = false,
                  log = function(level, msg) err(level .. ": " .. tostring(msg) .. "\n") end }
    local good, decision, reason, when = async.call(approve, bounds, job, ctx)
    if not good then
      err("jobrt policy: the policy failed: " .. tostring(decision) .. "\n")
      status = 4
    elseif decision == "accept" then
      out("accept\n")
    elseif decision == "reject" then
      out("reject: " .. tostring(reason or "(no reason)") .. "\n")
      status = 1
    elseif decision == "wait" then
      out("wait: " .. tostring(reason or "(no reason)") .. "\n(" .. describe_when(when) .. ")\n")
      status = 3
    else
      err("jobrt policy: the policy answered " .. tostring(decision) .. "; expected accept, reject or wait\n")
      status = 4
    end
  elseif type(mod) == "table" and type(mod.estimate) == "function" then
    local ctx = { options = complete, surface = surface, core = view }
    local good, est, eerr = async.call(mod.estimate, bounds, job, ctx)
    if not good then
      err("jobrt policy: the estimator failed: " .. tostring(est) .. "\n")
      status = 4
    elseif type(est) ~= "table" then
      out("no estimate: " .. tostring(type(eerr) == "table" and eerr.message or eerr) .. "\n")
      status = 1
    else
      out(json.encode(est) .. "\n")
    end
  else
    err("jobrt policy: " .. o.file .. " is neither an approval policy (approve) nor an estimator (estimate)\n")
    status = 2
  end
  core.close()
  os.execute("rm -rf '" .. tmp:gsub("'", "") .. "'")
  return status
end

return M
