-- Small constructors for process metadata (what GET /processes lists), so
-- that each category module reads as a table of definitions.
local util = require("api.openeo.processes.util")

local M = {}

local NULL = util.null

--- param(name, description, schema[, opts]) with opts.optional/opts.default.
-- A parameter with a default is optional; `default = util.null` means null.
function M.param(name, description, schema, opts)
  local p = { name = name, description = description, schema = schema }
  if opts then
    if opts.default ~= nil then
      p.optional = true
      p.default = opts.default
    end
    if opts.optional then p.optional = true end
    if opts.deprecated then p.deprecated = true end
  end
  return p
end

function M.returns(description, schema)
  return { description = description, schema = schema }
end

-- Common schemas.
M.ANY = { description = "Any data type." }
M.NUMBER = { type = "number" }
M.NUMBER_OR_NULL = { type = { "number", "null" } }
M.BOOLEAN = { type = "boolean" }
M.BOOLEAN_OR_NULL = { type = { "boolean", "null" } }
M.INTEGER = { type = "integer" }
M.STRING = { type = "string" }
M.SCALAR_OR_NULL = { type = { "number", "boolean", "string", "null" } }
M.ARRAY = { type = "array", items = M.ANY }
M.NUMBERS = { type = "array", items = M.NUMBER_OR_NULL }
M.BOOLEANS = { type = "array", items = M.BOOLEAN_OR_NULL }
M.LABEL = { { type = "number" }, { type = "string" } }
M.LABEL_OR_NULL = { { type = "number" }, { type = "string" }, { type = "null" } }
M.TEMPORAL = {
  { type = "string", format = "date-time", subtype = "date-time", description = "An RFC 3339 date and time with a time zone." },
  { type = "string", format = "date", subtype = "date", description = "A date (YYYY-MM-DD), taken as midnight UTC." },
}
M.TEMPORAL_OR_TIME = {
  M.TEMPORAL[1], M.TEMPORAL[2],
  { type = "string", subtype = "time", description = "A time of day (HH:MM:SS), in UTC." },
}

M.IGNORE_NODATA = M.param("ignore_nodata",
  "Whether no-data values (null) are skipped (`true`, the default) or make the result no-data (`false`).",
  M.BOOLEAN, { default = true })

--- callback(description, returns_description, returns_schema, params) ->
-- the schema of a parameter taking a child process graph.
function M.callback(params, returns_description, returns_schema)
  return {
    type = "object",
    subtype = "process-graph",
    parameters = params,
    returns = M.returns(returns_description, returns_schema),
  }
end

--- element_params(): the parameters array_apply and array_filter hand to
-- their child process for each element.
function M.element_params()
  return {
    M.param("x", "The element being processed.", M.ANY),
    M.param("index", "The zero-based position of the element.", { type = "integer", minimum = 0 }),
    M.param("label", "The label of the element, for labeled arrays; null otherwise.", M.LABEL_OR_NULL, { default = NULL }),
    M.param("context", "The `context` given to the parent process.", M.ANY, { default = NULL }),
  }
end

M.CONTEXT = M.param("context", "Additional data handed to the child process as its `context` parameter.", M.ANY, { default = NULL })

return M
