-- openEO process graphs: validation before anything runs, and evaluation of
-- graphs made of the processes in a registry (api.openeo.processes).
--
-- validate(pg, registry, opts) -> true | nil, err
-- evaluate(pg, registry, opts) -> value | nil, err
--
-- err is {code, message, status} with the openEO error codes; `node` and
-- `process` name the failing node where known. opts (both functions):
--   arguments   values for the graph's own parameters (from_parameter at top level)
--   parameters  the graph's parameter declarations [{name, default, ...}]
--               (defaults apply when no value is given anywhere)
--   free_parameters  validate: accept from_parameter names that nothing
--               declares (stored user-defined processes get values later)
--   max_nodes   total nodes over all nested graphs (default 10000)
--   max_depth   nesting of child graphs (default 50)
--   all_end_nodes  evaluate: also run top-level nodes that nothing consumes
--               (for processes with side effects); default only what the
--               result node needs
-- Evaluation is pull-based: a node runs when a consumer needs its value, at
-- most once per graph invocation (cached); lazy processes (if, and, or, xor)
-- decide which arguments to evaluate; a child graph (callback) runs afresh
-- for every call, with its own cache.
local json = require("jobrt.json")
local util = require("api.openeo.processes.util")
local schema = require("api.openeo.processes.schema")

local M = {}

local NULL = util.null
local DEFAULT_MAX_NODES = 10000
local DEFAULT_MAX_DEPTH = 50

local function err(code, message, extra)
  local e = { code = code, message = message, status = 400 }
  if extra then
    for k, v in pairs(extra) do e[k] = v end
  end
  return e
end

local function is_object(v)
  return type(v) == "table" and not util.is_array(v)
end

local function quote(s)
  return "'" .. tostring(s) .. "'"
end

-- What kind of reference (if any) an argument value is.
local function ref_kind(v)
  if type(v) ~= "table" or util.is_array(v) then return nil end
  if v.from_node ~= nil then return "node" end
  if v.from_parameter ~= nil then return "parameter" end
  if v.process_graph ~= nil then return "callback" end
  return nil
end

local sorted_keys = require("jobrt.tables").sorted_keys

local function lookup(registry, id)
  local def = registry[id]
  if type(def) ~= "table" or type(def.impl) ~= "function" then return nil end
  return def
end

-- Parameter maps per definition, built once: callbacks look them up for
-- every element they run on.
local PARAMS = setmetatable({}, { __mode = "k" })

local function params_by_name(def)
  local map = PARAMS[def]
  if map then return map end
  map = {}
  for _, p in ipairs(def.parameters or {}) do map[p.name] = p end
  PARAMS[def] = map
  return map
end

---------------------------------------------------------------------------
-- Validation

local Validator = {}
Validator.__index = Validator

-- scope: {names = {name = true}, parent = scope}; a from_parameter must name
-- something in it (or the caller allows free parameters).
local function scope_has(scope, name)
  while scope do
    if scope.names[name] then return true end
    scope = scope.parent
  end
  return false
end

function Validator:fail(code, message, where)
  self.error = err(code, message, where)
  return false
end

-- Walks one argument value: references, child graphs, nested arrays/objects.
-- edges collects the from_node targets (for the cycle check).
function Validator:walk(v, ctx, edges, depth)
  if depth > 256 then
    return self:fail("ProcessGraphComplexity", "Argument values are nested too deeply.", ctx.where)
  end
  if type(v) ~= "table" then return true end
  if util.is_array(v) then
    for i = 1, #v do
      if not self:walk(v[i], ctx, edges, depth + 1) then return false end
    end
    return true
  end
  local kind = ref_kind(v)
  if kind == "node" then
    if next(v, next(v)) ~= nil or type(v.from_node) ~= "string" then
      return self:fail("ProcessGraphInvalid", "A result reference must be exactly {\"from_node\": \"<node id>\"} (node "
        .. quote(ctx.node) .. ").", ctx.where)
    end
    if ctx.graph[v.from_node] == nil then
      return self:fail("ProcessGraphInvalid", "Node " .. quote(ctx.node) .. " refers to node " .. quote(v.from_node)
        .. ", which does not exist in the same process graph.", ctx.where)
    end
    edges[#edges + 1] = v.from_node
    return true
  elseif kind == "parameter" then
    if next(v, next(v)) ~= nil or type(v.from_parameter) ~= "string" then
      return self:fail("ProcessGraphInvalid", "A parameter reference must be exactly {\"from_parameter\": \"<name>\"} (node "
        .. quote(ctx.node) .. ").", ctx.where)
    end
    if not self.opts.free_parameters and not scope_has(ctx.scope, v.from_parameter) then
      return self:fail("ProcessParameterMissing", "Node " .. quote(ctx.node) .. " refers to parameter "
        .. quote(v.from_parameter) .. ", which has no value and no default here.", ctx.where)
    end
    return true
  elseif kind == "callback" then
    local cb = ctx.callback
    if not cb then
      return self:fail("ProcessParameterInvalid", "The value passed for parameter " .. quote(ctx.param) .. " in process "
        .. quote(ctx.process) .. " is invalid: a child process is not allowed here.", ctx.where)
    end
    local names = {}
    for _, p in ipairs(cb.parameters or {}) do names[p.name] = true end
    return self:graph(v.process_graph, { names = names, parent = ctx.scope }, ctx.depth + 1)
  end
  for _, k in ipairs(sorted_keys(v)) do
    if not self:walk(v[k], ctx, edges, depth + 1) then return false end
  end
  return true
end

-- Static type check of one argument: literals against the schema, results of
-- other nodes by what their process can return.
function Validator:typecheck(value, p, ctx)
  local graph = ctx.graph
  local registry = self.registry
  local mismatch
  local ok, why = schema.check(value, p.schema, function(v, sub)
    local kind = ref_kind(v)
    if kind == "node" and not mismatch then
      local target = graph[v.from_node]
      local def = lookup(registry, target.process_id)
      if def and def.returns and not schema.compatible(def.returns.schema, sub) then
        -- The checker only learns "a reference"; the mismatch is kept aside.
        mismatch = "the result of node " .. quote(v.from_node) .. " (" .. target.process_id
          .. ") can never be of the expected type"
      end
    end
    return kind
  end)
  if not ok or mismatch then
    return self:fail("ProcessParameterInvalid", "The value passed for parameter " .. quote(p.name) .. " in process "
      .. quote(ctx.process) .. " is invalid: " .. tostring(mismatch or why) .. ".", ctx.where)
  end
  return true
end

function Validator:node(id, node, graph, scope, depth, edges)
  local where = { node = id }
  local pid = node.process_id
  if type(pid) ~= "string" or pid == "" then
    return self:fail("ProcessGraphInvalid", "Node " .. quote(id) .. " has no process_id.", where)
  end
  where.process = pid
  local args = node.arguments
  if not is_object(args) then
    return self:fail("ProcessGraphInvalid", "Node " .. quote(id) .. " has no arguments object.", where)
  end
  local ns = node.namespace
  if ns ~= nil and ns ~= NULL and type(ns) ~= "string" then
    return self:fail("ProcessGraphInvalid", "Node " .. quote(id) .. ": namespace must be a string or null.", where)
  end
  if ns ~= nil and ns ~= NULL and ns ~= "backend" and ns ~= "predefined" then
    return self:fail("ProcessUnsupported", "Process with identifier " .. quote(pid) .. " is not available in namespace "
      .. quote(ns) .. ".", where)
  end
  local def = lookup(self.registry, pid)
  if not def then
    return self:fail("ProcessUnsupported", "Process with identifier " .. quote(pid) .. " is not available in namespace "
      .. quote(type(ns) == "string" and ns or "backend") .. ".", where)
  end
  local params = params_by_name(def)
  for _, name in ipairs(sorted_keys(args)) do
    if not params[name] then
      return self:fail("ProcessParameterUnsupported", "Process " .. quote(pid) .. " does not support parameter "
        .. quote(name) .. ".", where)
    end
  end
  for _, p in ipairs(def.parameters or {}) do
    if args[p.name] == nil and not p.optional then
      return self:fail("ProcessParameterRequired", "Process " .. quote(pid) .. " parameter " .. quote(p.name)
        .. " is required.", where)
    end
  end
  for _, p in ipairs(def.parameters or {}) do
    local v = args[p.name]
    if v ~= nil then
      local ctx = {
        graph = graph, node = id, process = pid, param = p.name, where = where,
        scope = scope, depth = depth, callback = schema.callback_schema(p.schema),
      }
      if not self:walk(v, ctx, edges, 0) then return false end
      if not self:typecheck(v, p, ctx) then return false end
    end
  end
  return true
end

-- Cycles among from_node edges, by depth-first search with colours.
local function find_cycle(ids, edges)
  local colour = {}
  local function visit(id)
    colour[id] = 1
    for _, to in ipairs(edges[id]) do
      if colour[to] == 1 then return to end
      if colour[to] == nil then
        local c = visit(to)
        if c then return c end
      end
    end
    colour[id] = 2
    return nil
  end
  for _, id in ipairs(ids) do
    if colour[id] == nil then
      local c = visit(id)
      if c then return c end
    end
  end
  return nil
end

function Validator:graph(pg, scope, depth)
  if depth > self.max_depth then
    return self:fail("ProcessGraphComplexity", "Child process graphs are nested more than " .. self.max_depth .. " deep.")
  end
  if not is_object(pg) or next(pg) == nil then
    if depth == 0 then
      return self:fail("ProcessGraphMissing", "No process graph given: expected an object of process nodes.")
    end
    return self:fail("ProcessGraphInvalid", "A child process graph must be a non-empty object of process nodes.")
  end
  local ids = sorted_keys(pg)
  self.count = self.count + #ids
  if self.count > self.max_nodes then
    return self:fail("ProcessGraphComplexity", "The process graph has more than " .. self.max_nodes .. " nodes.")
  end
  local results = {}
  for _, id in ipairs(ids) do
    if type(id) ~= "string" or id == "" then
      return self:fail("ProcessGraphInvalid", "Node identifiers must be non-empty strings.")
    end
    local node = pg[id]
    if not is_object(node) then
      return self:fail("ProcessGraphInvalid", "Node " .. quote(id) .. " is not an object.", { node = id })
    end
    if node.result ~= nil and type(node.result) ~= "boolean" then
      return self:fail("ProcessGraphInvalid", "Node " .. quote(id) .. ": result must be true or false.", { node = id })
    end
    if node.result == true then results[#results + 1] = id end
  end
  if #results ~= 1 then
    local which = depth == 0 and "The process graph" or "A child process graph"
    if #results == 0 then
      return self:fail("ProcessGraphInvalid", which .. " has no result node (a node with \"result\": true).")
    end
    return self:fail("ProcessGraphInvalid", which .. " has " .. #results .. " result nodes ("
      .. table.concat(results, ", ") .. "); exactly one is allowed.")
  end
  local edges = {}
  for _, id in ipairs(ids) do
    edges[id] = {}
    if not self:node(id, pg[id], pg, scope, depth, edges[id]) then return false end
  end
  local c = find_cycle(ids, edges)
  if c then
    return self:fail("ProcessGraphInvalid", "The process graph has a cycle through node " .. quote(c) .. ".", { node = c })
  end
  return true
end

local function top_scope(opts)
  local names = {}
  for k in pairs(opts.arguments or {}) do names[k] = true end
  for _, p in ipairs(opts.parameters or {}) do names[p.name] = true end
  return { names = names }
end

--- validate(process_graph, registry, opts) -> true | nil, err
function M.validate(pg, registry, opts)
  opts = opts or {}
  local v = setmetatable({
    registry = registry, opts = opts, count = 0,
    max_nodes = opts.max_nodes or DEFAULT_MAX_NODES,
    max_depth = opts.max_depth or DEFAULT_MAX_DEPTH,
  }, Validator)
  if v:graph(pg, top_scope(opts), 0) then return true end
  return nil, v.error
end

---------------------------------------------------------------------------
-- Evaluation

local function result_id(pg)
  for id, node in pairs(pg) do
    if type(node) == "table" and node.result == true then return id end
  end
  return nil
end

-- scope: {values = {...}, decl = {name = param}, parent = scope}
local function param_value(scope, name)
  local s = scope
  while s do
    local v = s.values and s.values[name]
    if v ~= nil then return v end
    s = s.parent
  end
  -- No value anywhere: the outermost declared default wins.
  local chain = {}
  s = scope
  while s do
    chain[#chain + 1] = s
    s = s.parent
  end
  for i = #chain, 1, -1 do
    local p = chain[i].decl and chain[i].decl[name]
    if p and p.default ~= nil then return p.default end
  end
  return nil
end

local Run = {}
Run.__index = Run

local function new_run(ev, pg, scope)
  return setmetatable({ ev = ev, pg = pg, scope = scope, cache = {}, busy = {} }, Run)
end

function Run:resolve(v, ctx)
  if type(v) ~= "table" then return v end
  if util.is_array(v) then
    local copy
    for i = 1, #v do
      local r, e = self:resolve(v[i], ctx)
      if e then return nil, e end
      -- Only tables can hold references; comparing numbers would take a
      -- NaN element for a change.
      if type(v[i]) == "table" and r ~= v[i] then
        if not copy then
          copy = {}
          for j = 1, i - 1 do copy[j] = v[j] end
        end
      end
      if copy then copy[i] = r end
    end
    if copy then
      local labels = util.labels_of(v)
      if labels then return util.labeled(copy, labels) end
      return util.array(copy)
    end
    return v
  end
  local kind = ref_kind(v)
  if kind == "node" then
    return self:node(v.from_node)
  elseif kind == "parameter" then
    local value = param_value(self.scope, v.from_parameter)
    if value == nil then
      return nil, err("ProcessParameterMissing", "Parameter " .. quote(v.from_parameter)
        .. " has no value and no default.", { node = ctx.node, process = ctx.process })
    end
    return value
  elseif kind == "callback" then
    return self.ev:callback(v, ctx.callback, self.scope)
  end
  local copy
  for k, x in pairs(v) do
    local r, e = self:resolve(x, ctx)
    if e then return nil, e end
    if type(x) == "table" and r ~= x then
      copy = copy or {}
      copy[k] = r
    end
  end
  if copy then
    for k, x in pairs(v) do
      if copy[k] == nil then copy[k] = x end
    end
    return json.object(copy)
  end
  return v
end

-- Resolves and checks one argument; nil, nil means "not given, no default".
function Run:argument(node, p, ctx)
  local raw = node.arguments[p.name]
  local value
  if raw == nil then
    if p.default == nil then return nil end
    value = p.default
  else
    local e
    ctx.param = p.name
    ctx.callback = schema.callback_schema(p.schema)
    value, e = self:resolve(raw, ctx)
    if e then return nil, e end
  end
  local ok, why = schema.check(value, p.schema)
  if not ok then
    return nil, err("ProcessParameterInvalid", "The value passed for parameter " .. quote(p.name) .. " in process "
      .. quote(ctx.process) .. " is invalid: " .. tostring(why) .. ".", { node = ctx.node, process = ctx.process })
  end
  return value
end

function Run:node(id)
  local cached = self.cache[id]
  if cached ~= nil then return cached end
  if self.busy[id] then
    return nil, err("ProcessGraphInvalid", "The process graph has a cycle through node " .. quote(id) .. ".", { node = id })
  end
  local node = self.pg[id]
  local def = lookup(self.ev.registry, node.process_id)
  local ctx = { node = id, process = node.process_id }
  self.busy[id] = true
  local params = params_by_name(def)
  local value, e
  if def.lazy then
    local seen = {}
    value, e = def.impl(function(name)
      local p = params[name]
      if seen[name] == nil then
        local v, ae = self:argument(node, p, ctx)
        if ae then return nil, ae end
        seen[name] = v == nil and NULL or v
      end
      return seen[name]
    end, ctx)
  else
    local args = {}
    for _, p in ipairs(def.parameters or {}) do
      local v, ae = self:argument(node, p, ctx)
      if ae then
        self.busy[id] = nil
        return nil, ae
      end
      args[p.name] = v
    end
    value, e = def.impl(args, ctx)
  end
  self.busy[id] = nil
  if value == nil then
    e = e or err("Internal", "Process " .. quote(node.process_id) .. " returned no value.")
    if type(e) ~= "table" then e = err("Internal", tostring(e)) end
    e.status = e.status or 400
    e.node = e.node or id
    e.process = e.process or node.process_id
    return nil, e
  end
  self.cache[id] = value
  return value
end

local Evaluator = {}
Evaluator.__index = Evaluator

-- A child process graph becomes a function(params) -> value | nil, err that
-- evaluates it afresh for each call, seeing params first and then the
-- parameters of every enclosing graph.
function Evaluator:callback(def, cb_schema, parent_scope)
  local decl = {}
  for _, p in ipairs(cb_schema and cb_schema.parameters or {}) do decl[p.name] = p end
  local pg = def.process_graph
  local rid = result_id(pg)
  return function(params)
    local run = new_run(self, pg, { values = params or {}, decl = decl, parent = parent_scope })
    return run:node(rid)
  end
end

local function run_graph(ev, pg, scope, all_end_nodes)
  local run = new_run(ev, pg, scope)
  local value, e = run:node(result_id(pg))
  if e then return nil, e end
  if all_end_nodes then
    local consumed = {}
    local function mark(v)
      if type(v) ~= "table" then return end
      local kind = ref_kind(v)
      if kind == "node" then consumed[v.from_node] = true return end
      if kind == "callback" then return end
      for _, x in pairs(v) do mark(x) end
    end
    for _, node in pairs(pg) do mark(node.arguments) end
    for _, id in ipairs(sorted_keys(pg)) do
      if not consumed[id] then
        local _, ee = run:node(id)
        if ee then return nil, ee end
      end
    end
  end
  return value
end

--- evaluate(process_graph, registry, opts) -> value | nil, err
-- Validates first; a Lua error inside a process becomes an Internal error.
function M.evaluate(pg, registry, opts)
  opts = opts or {}
  local ok, verr = M.validate(pg, registry, opts)
  if not ok then return nil, verr end
  local ev = setmetatable({ registry = registry, opts = opts }, Evaluator)
  local decl = {}
  for _, p in ipairs(opts.parameters or {}) do decl[p.name] = p end
  local scope = { values = opts.arguments or {}, decl = decl }
  local pok, value, e = pcall(run_graph, ev, pg, scope, opts.all_end_nodes)
  if not pok then
    if type(value) == "table" and value.code then return nil, value end
    return nil, { code = "Internal", message = "Server error: " .. tostring(value), status = 500 }
  end
  if value == nil then return nil, e end
  return value
end

return M
