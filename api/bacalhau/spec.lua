-- A decoded Bacalhau Spec (api/bacalhau/payload.lua) as a jobrt core job
-- (lua/jobrt/model.lua), and back as the document a job echo shows: the
-- field names and enum spellings of the client's API generation, with the
-- defaults the job will run with filled in.
local json = require("jobrt.json")
local payload = require("api.bacalhau.payload")
local enums = require("api.bacalhau.enums")
local bunits = require("api.bacalhau.units")
local storage = require("api.bacalhau.storage")
local model = require("jobrt.model")

local M = {}

local function fail(field, fmt, ...)
  return nil, { status = 400, field = field, message = string.format(fmt, ...) }
end

-- prefix.<field k of the decoded table t, as the client spelt it>
local function at(prefix, t, k)
  return prefix .. "." .. payload.spelt(t, k)
end

local sorted_keys = require("jobrt.tables").sorted_keys

---------------------------------------------------------------------------
-- NodeSelectors: Kubernetes label-selector operators, evaluated against
-- this node's labels.

local function as_int(s)
  return type(s) == "string" and s:find("^%s*[-+]?%d+%s*$") and math.tointeger(tonumber(s)) or nil
end

local OPERATORS = {
  ["in"] = function(have, values) return have ~= nil and values[have] end,
  ["notin"] = function(have, values) return have == nil or not values[have] end,
  ["exists"] = function(have) return have ~= nil end,
  ["!"] = function(have) return have == nil end,
  ["gt"] = function(have, _, list)
    local a, b = as_int(have), as_int(list[1])
    return a ~= nil and b ~= nil and a > b
  end,
  ["lt"] = function(have, _, list)
    local a, b = as_int(have), as_int(list[1])
    return a ~= nil and b ~= nil and a < b
  end,
}
OPERATORS["="], OPERATORS["=="], OPERATORS["!="] = OPERATORS["in"], OPERATORS["in"], OPERATORS["notin"]

-- How many values each operator takes: exactly one, none, or one or more.
local ARITY = { ["="] = 1, ["=="] = 1, ["!="] = 1, gt = 1, lt = 1, exists = 0, ["!"] = 0,
                ["in"] = "some", notin = "some" }

local function check_selectors(spec, labels)
  for i, sel in ipairs(spec.NodeSelectors or {}) do
    local field = at("Spec", spec, "NodeSelectors") .. "[" .. (i - 1) .. "]"
    local op = (sel.Operator or ""):match("^%s*(.-)%s*$"):lower()
    local test = OPERATORS[op]
    if not test then
      return fail(field, "%s has operator %q: use one of in, notin, =, ==, !=, exists, !, gt, lt",
        field, sel.Operator or "")
    end
    if not sel.Key or sel.Key == "" then return fail(field, "%s has no Key", field) end
    local list, values = sel.Values or {}, {}
    for _, v in ipairs(list) do values[v] = true end
    local n = ARITY[op]
    if (n == "some" and #list == 0) or (n ~= "some" and #list ~= n) then
      return fail(field, "%s: operator %s takes %s", field, op,
        n == "some" and "one or more Values" or n == 0 and "no Values" or "exactly one value")
    end
    if (op == "gt" or op == "lt") and not as_int(list[1]) then
      return fail(field, "%s: operator %s compares with a whole number, not %q", field, op, list[1])
    end
    local have = labels and labels[sel.Key]
    if not test(have, values, list) then
      return fail(field, "%s (%s %s%s) does not match this node, whose %s", field, sel.Key, op,
        #list > 0 and (" " .. table.concat(list, ",")) or "",
        have and string.format("%s is %q", sel.Key, have) or ("has no label " .. sel.Key))
    end
  end
  return true
end

---------------------------------------------------------------------------
-- What the task runs, per engine.

local function env_from_list(spec, list)
  local env = {}
  for i, kv in ipairs(list or {}) do
    local k, v = kv:match("^([^=]*)=(.*)$")
    if not k or not k:find("^[%a_][%w_]*$") then
      local field = at(at("Spec", spec, "Docker"), spec.Docker, "EnvironmentVariables")
      return fail(field .. "[" .. (i - 1) .. "]", "%s[%d] %q must be NAME=value with a name of "
        .. "letters, digits and '_', not starting with a digit", field, i - 1, kv)
    end
    env[k] = v
  end
  return next(env) and env or nil
end

local function docker_task(spec, opts)
  local d = spec.Docker or {}
  local field = at("Spec", spec, "Docker")
  local image = d.Image or ""
  local images = opts.images or {}
  local function ipath() return field .. "." .. payload.spelt(d, "Image") end
  if image == "" then return fail(ipath(), "%s is missing: name the image to run", ipath()) end
  -- The image store first (an OCI image, imported or pulled, or pulled on
  -- demand), then sandbox.images.
  local how = opts.resolve_image and image ~= "host" and opts.resolve_image(image)
  local name = how and how ~= "sandbox" and image
  if not name then
    name = images[image] and image or (images[(image:gsub(":latest$", ""))] and image:gsub(":latest$", ""))
  end
  if not name then
    local known = sorted_keys(images)
    return fail(ipath(), "%s %q is not an image this node has: use one of %s, or an image of its"
      .. " image store (`jobrt images import` or `pull`)", ipath(), image,
      #known > 0 and table.concat(known, ", ") or "(none: sandbox.images is empty)")
  end
  local env, eerr = env_from_list(spec, d.EnvironmentVariables)
  if eerr then return nil, eerr end
  local workdir = d.WorkingDirectory ~= "" and d.WorkingDirectory or nil
  if how == "store" or how == "pull" then
    -- Docker's rule: Entrypoint replaces the image's, Parameters its Cmd.
    local ep = d.Entrypoint and #d.Entrypoint > 0 and json.array({ table.unpack(d.Entrypoint) }) or nil
    local params = json.array({ table.unpack(d.Parameters or {}) })
    return { image = name, entrypoint = ep, command = #params > 0 and params or nil, env = env,
             workdir = workdir }
  end
  local command = json.array({})
  for _, list in ipairs({ d.Entrypoint or {}, d.Parameters or {} }) do
    for _, a in ipairs(list) do command[#command + 1] = a end
  end
  if #command == 0 then
    return fail(field, "%s runs no command: give Entrypoint (and Parameters); an image's own "
      .. "entrypoint is not known for a sandbox.images folder", field)
  end
  return { image = name, command = command, env = env, workdir = workdir }
end

local function wasm_task(spec, opts)
  local w = spec.Wasm or {}
  local field = at("Spec", spec, "Wasm")
  if not opts.wasm then
    return fail(at("Spec", spec, "Engine"), "Wasm jobs are not run on this node (it has no WebAssembly "
      .. "runtime configured): use the Docker engine")
  end
  if w.ImportModules and #w.ImportModules > 0 then
    return fail(field .. "." .. payload.spelt(w, "ImportModules"), "%s.%s: imported modules are "
      .. "not supported here: link them into the entry module", field, payload.spelt(w, "ImportModules"))
  end
  local mfield = field .. "." .. payload.spelt(w, "EntryModule")
  if not w.EntryModule then return fail(mfield, "%s is missing: say where the module comes from", mfield) end
  local module = w.EntryModule
  if not module.Path or module.Path == "" then
    -- a copy: the decoded spec stays as the client sent it
    local copy = {}
    for k, v in pairs(module) do copy[k] = v end
    copy.Path = "/inputs/entry-module"
    module = copy
  end
  local input, err = storage.input(module, mfield, opts)
  if not input then return nil, err end
  local target = input.target or module.Path
  local command = json.array({})
  for _, a in ipairs(opts.wasm.command or {}) do command[#command + 1] = a end
  command[#command + 1] = target
  command[#command + 1] = (w.EntryPoint ~= nil and w.EntryPoint ~= "") and w.EntryPoint or "_start"
  for _, a in ipairs(w.Parameters or {}) do command[#command + 1] = a end
  local env
  for k, v in pairs(w.EnvironmentVariables or {}) do
    if not k:find("^[%a_][%w_]*$") then
      local ef = field .. "." .. payload.spelt(w, "EnvironmentVariables")
      return fail(ef .. "." .. k, "%s: %q is not a variable name (letters, digits and '_', not "
        .. "starting with a digit)", ef, k)
    end
    env = env or {}
    env[k] = v
  end
  input.target = target
  return { image = opts.wasm.image, command = command, env = env, extra_input = input }
end

local function engine_of(spec)
  if spec.Engine then return spec.Engine end
  local es = spec.EngineSpec
  if es and es.Type and es.Type ~= "" then
    local id, why = enums.parse("Engine", es.Type, "v1.1")
    if not id then
      local f = at("Spec", spec, "EngineSpec") .. "." .. payload.spelt(es, "Type")
      return fail(f, "%s %s", f, why)
    end
    return id
  end
  return fail(at("Spec", spec, "Engine"), "Spec.Engine is missing: name the engine (Docker, Wasm or Noop)")
end

---------------------------------------------------------------------------

local function network_of(spec)
  local n = spec.Network or {}
  local t = n.Type or "none"
  local domains = n.Domains or {}
  if t ~= "http" then
    if #domains > 0 then
      local f = at("Spec", spec, "Network")
      return fail(f .. "." .. payload.spelt(n, "Domains"), "%s.%s is only for network type HTTP",
        f, payload.spelt(n, "Domains"))
    end
    return { mode = t }
  end
  local out = json.array({})
  for _, d in ipairs(domains) do
    -- Bacalhau's ".example.com" is the domain and every name under it.
    if d:sub(1, 1) == "." then
      out[#out + 1] = d:sub(2)
      out[#out + 1] = "*" .. d
    else
      out[#out + 1] = d
    end
  end
  return { mode = "allow", domains = out }
end

local function resources_of(spec, defaults)
  local r = spec.Resources or {}
  local out = {}
  local function given(s) return s ~= nil and s ~= "" end
  -- decode has checked each string; a table from elsewhere is checked again
  local function read(name, reader)
    if not given(r[name]) then return true end
    local v, why = reader(r[name])
    if not v then
      local f = at("Spec", spec, "Resources") .. "." .. payload.spelt(r, name)
      return fail(f, "%s %q %s", f, r[name], why)
    end
    return v
  end
  local cpu, e1 = read("CPU", bunits.cpu)
  local mem, e2 = read("Memory", bunits.bytes)
  local disk, e3 = read("Disk", bunits.bytes)
  local gpu, e4 = read("GPU", bunits.gpu)
  local err = e1 or e2 or e3 or e4
  if err then return nil, err end
  out.cpu = cpu ~= true and cpu or defaults.cpu
  out.memory = mem ~= true and mem or defaults.memory
  out.disk = disk ~= true and disk or nil
  out.gpu = gpu ~= true and gpu or nil
  return out
end

-- How many copies of the task: Deal.Concurrency (1 when absent), checked
-- as Bacalhau checks a deal.
local function copies(spec, max)
  local deal = spec.Deal or {}
  local f = function(name) return at("Spec", spec, "Deal") .. "." .. payload.spelt(deal, name) end
  local n = deal.Concurrency
  if deal.TargetingMode then
    -- "all": once on every matching node, and this is the one node.
    if n and n > 1 then
      return fail(f("Concurrency"), "%s must be 0 or 1 when TargetingMode is all (run on every "
        .. "matching node)", f("Concurrency"))
    end
    return 1
  end
  n = n or 1
  if n < 1 then return fail(f("Concurrency"), "%s must be at least 1, not %d", f("Concurrency"), n) end
  if n > max then
    return fail(f("Concurrency"), "%s %d is more than this node runs for one job (%d)",
      f("Concurrency"), n, max)
  end
  local c = deal.Confidence
  if c and (c < 0 or c > n) then
    return fail(f("Confidence"), "%s must be between 0 and Concurrency (%d), not %d",
      f("Confidence"), n, c)
  end
  if deal.MinBids and deal.MinBids < 0 then
    return fail(f("MinBids"), "%s must not be negative", f("MinBids"))
  end
  return n
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end

--- spec.to_job(spec, opts) -> job, publisher | nil, err
-- spec: Spec as payload.decode("submit", ...) gives it. opts: images
-- (sandbox.images: name -> root), host_paths (sandbox.allow_host_paths),
-- wasm (nil | {image =, command = {argv prefix}}), defaults ({cpu =
-- millicores, memory = bytes, timeout = seconds}), node_labels (string
-- map), max_tasks (default: the core's limits.tasks default). job has
-- `labels` and `tasks` (model.lua's fields; `doc` is the caller's);
-- publisher is the lower-case publisher name ("local" when none is given).
function M.to_job(spec, opts)
  opts = opts or {}
  local defaults = opts.defaults or {}
  local engine, err = engine_of(spec)
  if not engine then return nil, err end
  if spec.Verifier and spec.Verifier ~= "noop" then
    return fail(at("Spec", spec, "Verifier"), "verifier %s is not available: results are not verified "
      .. "here (use Noop)", enums.name("Verifier", spec.Verifier, "v1.0"))
  end
  local ok
  ok, err = check_selectors(spec, opts.node_labels)
  if not ok then return nil, err end
  local n
  n, err = copies(spec, opts.max_tasks or model.LIMITS.tasks.default)
  if not n then return nil, err end

  local task
  if engine == "docker" then
    task, err = docker_task(spec, opts)
  elseif engine == "wasm" then
    task, err = wasm_task(spec, opts)
  elseif engine == "noop" then
    task = { image = "host", command = json.array({ "true" }) }
  else
    err = select(2, fail(at("Spec", spec, "Engine"), "engine %s is not available on this node: use "
      .. "Docker, Wasm or Noop", enums.name("Engine", engine, "v1.0")))
  end
  if not task then return nil, err end
  if spec.EngineSpec and spec.EngineSpec.Params and next(spec.EngineSpec.Params)
      and engine ~= "noop" then
    local f = at("Spec", spec, "EngineSpec") .. "." .. payload.spelt(spec.EngineSpec, "Params")
    return fail(f, "%s is not read here: give the engine's settings in Spec.%s", f,
      engine == "docker" and "Docker" or "Wasm")
  end

  local inputs = json.array({})
  if task.extra_input then inputs[1] = task.extra_input end
  task.extra_input = nil
  for i, s in ipairs(spec.Inputs or {}) do
    local input
    input, err = storage.input(s, at("Spec", spec, "Inputs") .. "[" .. (i - 1) .. "]", opts)
    if not input then return nil, err end
    inputs[#inputs + 1] = input
  end
  local outputs = json.array({})
  local given_outputs = spec.Outputs or {}
  if #given_outputs == 0 then given_outputs = { {} } end
  for i, s in ipairs(given_outputs) do
    local out
    out, err = storage.output(s, at("Spec", spec, "Outputs") .. "[" .. (i - 1) .. "]")
    if not out then return nil, err end
    outputs[#outputs + 1] = out
  end
  task.inputs = #inputs > 0 and inputs or nil
  task.outputs = outputs
  task.network, err = network_of(spec)
  if not task.network then return nil, err end
  task.resources, err = resources_of(spec, defaults)
  if not task.resources then return nil, err end
  local timeout = spec.Timeout
  task.timeout = (timeout and timeout > 0) and timeout or defaults.timeout

  local tasks = json.array({})
  for i = 0, n - 1 do
    local t = i == 0 and task or copy(task)
    t.alias = tostring(i)
    tasks[#tasks + 1] = t
  end
  local labels
  for _, a in ipairs(spec.Annotations or {}) do
    labels = labels or {}
    labels[a] = "true"
  end
  local ps = spec.PublisherSpec
  local publisher = ps and ps.Type or spec.Publisher or "local"
  return { labels = labels, tasks = tasks }, publisher
end

---------------------------------------------------------------------------
-- The echo.

local function list_of(v, each)
  if v == nil then return nil end
  local out = json.array({})
  for i, x in ipairs(v) do out[i] = each and each(x) or x end
  return out
end

local function storage_doc(s, gen)
  if s == nil then return nil end
  local out = json.object({})
  for _, k in ipairs({ "Name", "CID", "URL", "S3", "Repo", "SourcePath", "ReadWrite", "Metadata" }) do
    out[k] = s[k]
  end
  if s.StorageSource then out.StorageSource = enums.name("StorageSource", s.StorageSource, gen) end
  out[gen == "v1.0" and "path" or "Path"] = s.Path
  return out
end

--- spec.emit(spec, api_version, defaults) -> the Spec document a job echo
-- shows: field names and enum names as clients of api_version spell them
-- (V1alpha1, V1beta1: v1.0's "inputs", "path", "Docker", "URLDownload";
-- V1beta2: v1.1's "Inputs", "Path", "docker", "urlDownload"), with what the
-- job runs with filled in: Resources.CPU and Memory, Timeout, Network.Type,
-- Deal.Concurrency and the default output. defaults as for to_job.
function M.emit(spec, api_version, defaults)
  local gen = enums.generation(api_version) or "v1.1"
  defaults = defaults or {}
  local function name(kind, id) return id and enums.name(kind, id, gen) end
  local out = json.object({})
  out.Engine = name("Engine", spec.Engine)
  -- v1.1 dropped verifiers; its clients do not know the field.
  if gen == "v1.0" then out.Verifier = name("Verifier", spec.Verifier) end
  out.Publisher = name("Publisher", spec.Publisher)
  if spec.PublisherSpec then
    out.PublisherSpec = json.object({ Type = name("Publisher", spec.PublisherSpec.Type),
                                      Params = spec.PublisherSpec.Params })
  end
  out.EngineSpec = spec.EngineSpec
  out.Docker = spec.Docker
  if spec.Wasm then
    local w = json.object({})
    for k, v in pairs(spec.Wasm) do w[k] = v end
    w.EntryModule = storage_doc(spec.Wasm.EntryModule, gen)
    w.ImportModules = list_of(spec.Wasm.ImportModules, function(x) return storage_doc(x, gen) end)
    out.Wasm = w
  end
  if spec.Language then
    local l = json.object({})
    for k, v in pairs(spec.Language) do l[k] = v end
    l.JobContext = storage_doc(spec.Language.JobContext, gen)
    out.Language = l
  end
  local r = spec.Resources or {}
  local res = json.object({ Disk = r.Disk, GPU = r.GPU })
  res.CPU = (r.CPU and r.CPU ~= "") and r.CPU or (defaults.cpu and bunits.cpu_text(defaults.cpu))
  res.Memory = (r.Memory and r.Memory ~= "") and r.Memory
    or (defaults.memory and bunits.bytes_text(defaults.memory))
  out.Resources = res
  local n = spec.Network or {}
  out.Network = json.object({ Type = name("Network", n.Type or "none"), Domains = n.Domains })
  out.Timeout = (spec.Timeout and spec.Timeout > 0) and spec.Timeout or defaults.timeout
  local inputs = list_of(spec.Inputs, function(x) return storage_doc(x, gen) end)
  local outputs = list_of(spec.Outputs, function(x) return storage_doc(x, gen) end)
  if not outputs or #outputs == 0 then
    outputs = json.array({ storage_doc({ Name = "outputs", Path = "/outputs" }, gen) })
  end
  out[gen == "v1.0" and "inputs" or "Inputs"] = inputs
  out[gen == "v1.0" and "outputs" or "Outputs"] = outputs
  out.Annotations = spec.Annotations
  out.NodeSelectors = spec.NodeSelectors
  out.DoNotTrack = spec.DoNotTrack
  local deal = spec.Deal or {}
  out.Deal = json.object({ Confidence = deal.Confidence, MinBids = deal.MinBids,
                           TargetingMode = deal.TargetingMode or nil,
                           Concurrency = deal.Concurrency or (not deal.TargetingMode and 1 or nil) })
  return out
end

return M
