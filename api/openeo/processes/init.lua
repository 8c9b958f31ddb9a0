-- The registry of openEO processes this back-end runs without data cubes:
-- `registry[id]` is a definition {id, summary, description, categories,
-- parameters, returns, exceptions, experimental, lazy, impl}; `list()` gives
-- the metadata alone, sorted by id, ready to encode for GET /processes.
--
-- impl contract: impl(args, ctx) -> value | nil, err. `args` holds the
-- evaluated arguments with defaults filled in and already checked against
-- the parameter schemas; a child process argument is a function(params) ->
-- value | nil, err. A `lazy` process gets get(name) -> value | nil, err
-- instead of `args`, and evaluates only what it needs. Values: null is
-- util.null, arrays are jobrt.json arrays (util.labeled for labels), numbers
-- may be NaN or ±Infinity. err is {code, message, status}.
local json = require("jobrt.json")
local util = require("api.openeo.processes.util")

local MODULES = { "math", "trigonometry", "comparison", "logic", "statistics", "arrays", "text", "dates" }

local registry = {}
local ids = {}

for _, name in ipairs(MODULES) do
  local defs = require("api.openeo.processes." .. name)
  for _, def in ipairs(defs) do
    assert(not registry[def.id], "process defined twice: " .. def.id)
    registry[def.id] = def
    ids[#ids + 1] = def.id
  end
end
table.sort(ids)

-- Metadata as JSON-ready tables: sequences become arrays, everything else
-- objects, and functions (impl) are left out.
local function jsonify(v)
  if type(v) ~= "table" or v == util.null then return v end
  if json.is_array(v) or v[1] ~= nil then
    local a = {}
    for i = 1, #v do a[i] = jsonify(v[i]) end
    return json.array(a)
  end
  local o = {}
  for k, x in pairs(v) do
    if type(x) ~= "function" then o[k] = jsonify(x) end
  end
  return json.object(o)
end

local PUBLIC = { "id", "summary", "description", "categories", "experimental", "parameters", "returns", "exceptions" }

local function describe(def)
  local d = {}
  for _, k in ipairs(PUBLIC) do d[k] = def[k] end
  if d.parameters == nil then d.parameters = json.array() end
  return jsonify(d)
end

local listed -- built on first use, then shared (callers must not modify it)

--- list() -> array of process metadata (no impl), sorted by id.
local function list()
  if not listed then
    listed = {}
    for i, id in ipairs(ids) do listed[i] = describe(registry[id]) end
    listed = json.array(listed)
  end
  return listed
end

return setmetatable({}, {
  __index = function(_, k)
    if k == "list" then return list end
    return registry[k]
  end,
  __pairs = function() return next, registry, nil end,
  __newindex = function() error("the process registry is read-only", 2) end,
})
