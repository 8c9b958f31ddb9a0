-- Runs one openEO process graph document to a JSON result, and the
-- `jobrt eval` command (M.command) that batch jobs run as a task. The
-- document is `{"process": {"process_graph": ...}}` (a job or sync request
-- body), `{"process_graph": ...}` (a process) or a bare process graph.
--
-- JSON cannot carry NaN or ±Infinity. Results are written with them as null
-- by default (what JavaScript's JSON.stringify does), or as the strings
-- "NaN", "Infinity", "-Infinity" with opts.nonfinite = "string", or refused
-- with opts.nonfinite = "error".
local json = require("jobrt.json")
local graph = require("api.openeo.graph")

local M = {}

local function err(code, message, status)
  return { code = code, message = message, status = status or 400 }
end

--- extract(doc) -> process_graph, process | nil, err
-- `process` is the object holding the graph (for its parameters), or nil.
function M.extract(doc)
  if type(doc) ~= "table" or json.is_array(doc) then
    return nil, err("ProcessGraphMissing", "Expected a JSON object holding a process graph.")
  end
  if doc.process ~= nil then
    local p = doc.process
    if type(p) ~= "table" or json.is_array(p) or type(p.process_graph) ~= "table" then
      return nil, err("ProcessGraphMissing", "The process has no process_graph object.")
    end
    return p.process_graph, p
  end
  if doc.process_graph ~= nil then
    if type(doc.process_graph) ~= "table" then
      return nil, err("ProcessGraphMissing", "process_graph must be an object of process nodes.")
    end
    return doc.process_graph, doc
  end
  return doc, nil
end

local INF = math.huge

-- Replaces NaN and infinities for JSON; arrays stay arrays, labels are
-- dropped (JSON has no labeled arrays).
local function finite(v, mode)
  local t = type(v)
  if t == "number" then
    if v == v and v ~= INF and v ~= -INF then return v end
    if mode == "error" then
      return nil, err("Internal", "The result holds " .. (v ~= v and "NaN" or "an infinite number")
        .. ", which JSON cannot represent.", 500)
    end
    if mode == "string" then
      if v ~= v then return "NaN" end
      return v > 0 and "Infinity" or "-Infinity"
    end
    return json.null
  end
  if t ~= "table" or v == json.null then return v end
  local arr = json.is_array(v)
  local c = {}
  if arr or (getmetatable(v) == nil and v[1] ~= nil) then
    for i = 1, #v do
      local x, e = finite(v[i], mode)
      if e then return nil, e end
      c[i] = x
    end
    return json.array(c)
  end
  for k, x in pairs(v) do
    local y, e = finite(x, mode)
    if e then return nil, e end
    c[k] = y
  end
  return json.object(c)
end

--- encode(value[, mode]) -> JSON text | nil, err
function M.encode(value, mode)
  local v, e = finite(value, mode or "null")
  if e then return nil, e end
  local ok, text = pcall(json.encode, v)
  if not ok then return nil, err("Internal", "Cannot encode the result: " .. tostring(text), 500) end
  return text
end

--- evaluate(input[, opts]) -> value | nil, err. input: JSON text or a
-- decoded document. opts as for graph.evaluate, plus opts.registry (default
-- api.openeo.processes).
function M.evaluate(input, opts)
  opts = opts or {}
  local doc = input
  if type(input) == "string" then
    local ok, decoded = pcall(json.decode, input)
    if not ok then
      return nil, err("ProcessGraphMissing", "The document is not valid JSON: " .. tostring(decoded))
    end
    doc = decoded
  end
  local pg, process = M.extract(doc)
  if not pg then return nil, process end
  local gopts = {}
  for k, v in pairs(opts) do gopts[k] = v end
  if process and gopts.parameters == nil and type(process.parameters) == "table" then
    gopts.parameters = process.parameters
  end
  local registry = opts.registry or require("api.openeo.processes")
  return graph.evaluate(pg, registry, gopts)
end

--- run(input[, opts]) -> JSON text of the result | nil, err
-- opts.nonfinite: "null" (default), "string" or "error".
function M.run(input, opts)
  opts = opts or {}
  local value, e = M.evaluate(input, opts)
  if value == nil then return nil, e end
  return M.encode(value, opts.nonfinite)
end

--- run_file(path_or_text[, opts]) -> JSON text | nil, err
-- A text starting with "{" is the document itself; anything else is a path,
-- read with opts.read(path) -> text | nil, msg (surface code has no io: the
-- caller hands in its reader, as jobrt.main does with cmd.read).
function M.run_file(source, opts)
  opts = opts or {}
  local text = source
  if type(source) == "string" and not source:match("^%s*{") then
    local read = opts.read
    if not read then return nil, err("Internal", "No way to read files here; pass opts.read.", 500) end
    local data, msg = read(source)
    if not data then return nil, err("ProcessGraphMissing", "Cannot read " .. source .. ": " .. tostring(msg)) end
    text = data
  end
  return M.run(text, opts)
end

-- openEO's error document for a failure of the command.
local function error_text(e)
  e = type(e) == "table" and e or { code = "Internal", message = tostring(e) }
  return json.encode({
    code = e.code or "Internal", message = e.message or tostring(e.code), node = e.node, process = e.process,
  })
end

--- The `jobrt eval` command, offered through the surface's `commands`:
-- cmd.args (the file), cmd.options.output, and cmd.read / cmd.write /
-- cmd.stderr (jobrt.main's file access; surface code has no io).
M.command = {
  usage = "eval FILE|- [-o OUT]",
  summary = "evaluate an openEO process graph document",
  help = [[
Evaluates an openEO process graph document: a batch job or sync request body
({"process": {"process_graph": ...}}), a process ({"process_graph": ...}) or a
bare process graph, read from FILE or, with -, standard input. Prints the
result as JSON, or writes it to OUT with -o. On failure prints the openEO
error document ({"code", "message", "node", "process"}) on standard error
and exits 1. openEO batch jobs run this command inside their task.]],
  flags = { ["-o"] = "output", ["--output"] = "output" },
  run = function(cmd)
    if #cmd.args ~= 1 then return nil, "eval needs one FILE (or - for standard input)" end
    local input, rerr = cmd.read(cmd.args[1])
    if not input then
      cmd.stderr(error_text({ code = "ProcessGraphMissing", message = rerr }) .. "\n")
      return 1
    end
    local text, e = M.run(input)
    if not text then
      cmd.stderr(error_text(e) .. "\n")
      return 1
    end
    local ok, werr = cmd.write(cmd.options.output, text .. "\n")
    if not ok then
      cmd.stderr(error_text({ code = "StorageFailure", message = werr }) .. "\n")
      return 1
    end
    return 0
  end,
}

return M
