-- The default cost estimator: a price per cpu-second, per GiB-second of
-- memory and per output byte, applied to an upper bound of what a job's
-- tasks may use. Options (the YAML's plugins entry): currency (the
-- deployment's, stated once here), cpu_second, gib_second, output_byte,
-- base_seconds, seconds_per_node, bytes_per_node, max_nodes, unestimable
-- (process ids that defeat an estimate), and price overrides by surface
-- and by image (`surfaces: {openeo: {cpu_second: 0.0002}}`, `images:
-- {gpu-image: {cpu_second: 0.001}}`; an image's price wins over its
-- surface's, which wins over the base price).
--
-- estimate(job, ctx) -> {costs, duration (seconds), size (bytes), currency}
--                     | nil, {code = "EstimateComplexity", message}
-- ctx.options are the plugin's options; ctx.complexity (optional) is what
-- the surface knows of the work: {nodes = count, processes = {id = true}}.
local M = {}

local GiB = 1024 * 1024 * 1024

M.schema = {
  currency = { type = "string" }, -- none: costs are still reported
  cpu_second = { type = "number", default = 0.0001, min = 0 },
  gib_second = { type = "number", default = 0.00005, min = 0 },
  output_byte = { type = "number", default = 0.000000001, min = 0 },
  base_seconds = { type = "number", default = 1, min = 0 },
  seconds_per_node = { type = "number", default = 0.05, min = 0 },
  bytes_per_node = { type = "bytes", default = 4096 },
  max_nodes = { type = "integer", default = 2000, min = 1 },
  unestimable = { type = "list", of = { type = "string" }, default = {} },
  surfaces = { type = "map", default = {}, description = "prices by surface",
    of = { type = "record", fields = {
      cpu_second = { type = "number", min = 0 }, gib_second = { type = "number", min = 0 },
      output_byte = { type = "number", min = 0 } } } },
  images = { type = "map", default = {}, description = "prices by image",
    of = { type = "record", fields = {
      cpu_second = { type = "number", min = 0 }, gib_second = { type = "number", min = 0 },
      output_byte = { type = "number", min = 0 } } } },
}

-- The price of key for a task's image on a surface: image, surface, base.
local function price(opts, key, surface, image)
  local by_image = type(opts.images) == "table" and opts.images[image or "host"]
  if type(by_image) == "table" and by_image[key] ~= nil then return by_image[key] end
  local by_surface = type(opts.surfaces) == "table" and surface and opts.surfaces[surface]
  if type(by_surface) == "table" and by_surface[key] ~= nil then return by_surface[key] end
  local v = opts[key]
  if v == nil then return M.schema[key].default end
  return v
end

-- The options come complete from the loader; a caller handing its own
-- still gets the defaults.
local function option(opts, key)
  local v = opts[key]
  if v == nil then return M.schema[key].default end
  return v
end

local function complexity(message)
  return nil, { code = "EstimateComplexity", message = message, status = 500 }
end

local function round(x, places)
  local m = 10 ^ places
  return math.floor(x * m + 0.5) / m
end

function M.estimate(job, ctx)
  ctx = ctx or {}
  local opts = ctx.options or {}
  local cx = ctx.complexity or {}
  local nodes = cx.nodes or 1
  if nodes > option(opts, "max_nodes") then
    return complexity(string.format("The process has %d nodes; estimates stop at %d.", nodes,
      option(opts, "max_nodes")))
  end
  for _, id in ipairs(opts.unestimable or {}) do
    if cx.processes and cx.processes[id] then
      return complexity("The process uses '" .. id .. "', whose cost cannot be told in advance.")
    end
  end
  local tasks = type(job) == "table" and job.tasks or nil
  if type(tasks) ~= "table" or #tasks == 0 then
    return complexity("The job has no work to estimate.")
  end
  local costs, longest, size = 0, 0, 0
  for _, t in ipairs(tasks) do
    local r = t.resources or {}
    local cores = (tonumber(r.cpu) or 0) > 0 and r.cpu / 1000 or 1
    local gib = (tonumber(r.memory) or 0) > 0 and r.memory / GiB or 0
    local seconds = option(opts, "base_seconds") + option(opts, "seconds_per_node") * nodes
    local limit = tonumber(t.timeout)
    if limit and limit > 0 then
      seconds = math.min(seconds, limit)
    elseif not cx.nodes then
      return complexity("Task '" .. tostring(t.alias) .. "' has no time limit and nothing bounds its work.")
    end
    local bytes = option(opts, "bytes_per_node") * nodes
    local surface = ctx.surface or (type(job) == "table" and job.surface) or nil
    costs = costs + cores * seconds * price(opts, "cpu_second", surface, t.image)
      + gib * seconds * price(opts, "gib_second", surface, t.image)
      + bytes * price(opts, "output_byte", surface, t.image)
    longest = math.max(longest, seconds)
    size = size + bytes
  end
  return {
    costs = round(costs, 6),
    duration = math.ceil(longest),
    size = math.floor(size),
    currency = option(opts, "currency"),
  }
end

return M
