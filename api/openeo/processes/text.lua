-- openEO text processes. Positions are counted in Unicode characters, and
-- case-insensitive matching folds Latin, Greek and Cyrillic letters (see
-- util.casefold). Patterns are plain text, never regular expressions.
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null = util.null, util.is_null
local param, returns = meta.param, meta.returns

local function args(what)
  return {
    param("data", "The text to search " .. what .. ".", { type = { "string", "null" } }),
    param("pattern", "The text to look for (plain text, not a regular expression).", meta.STRING),
    param("case_sensitive", "`false` ignores the difference between upper and lower case.", meta.BOOLEAN, { default = true }),
  }
end

local function prepare(a)
  local data, pattern = a.data, a.pattern
  if a.case_sensitive == false then
    data, pattern = util.casefold(data), util.casefold(pattern)
  end
  return data, pattern
end

local function text_of(v)
  if is_null(v) then return "null" end
  if type(v) == "number" then return util.number_text(v) end
  return tostring(v)
end

local function matcher(id, summary, where, test)
  return {
    id = id, summary = summary,
    description = "Checks whether the text `data` " .. where .. " `pattern`. A null `data` gives null.",
    categories = { "texts", "comparison" },
    parameters = args(where:match("begins") and "at the start of" or where:match("ends") and "at the end of" or "in"),
    returns = returns("true or false, or null for a null `data`.", meta.BOOLEAN_OR_NULL),
    impl = function(a)
      if is_null(a.data) then return NULL end
      return test(prepare(a))
    end,
  }
end

return {
  matcher("text_begins", "Text begins with another text", "begins with",
    function(d, p) return d:sub(1, #p) == p end),
  matcher("text_ends", "Text ends with another text", "ends with",
    function(d, p) return p == "" or d:sub(-#p) == p end),
  matcher("text_contains", "Text contains another text", "contains",
    function(d, p) return d:find(p, 1, true) ~= nil end),
  {
    id = "text_find", summary = "Position of a text in another text",
    description = "Gives the zero-based character position of the first occurrence of `pattern` in `data`, or null " ..
      "if it does not occur. A null `data` gives null.",
    categories = { "texts" }, experimental = true,
    parameters = args("in"),
    returns = returns("The position in characters, or null.", { type = { "integer", "null" }, minimum = 0 }),
    impl = function(a)
      if is_null(a.data) then return NULL end
      local d, p = prepare(a)
      local at = d:find(p, 1, true)
      if not at then return NULL end
      return (utf8.len(d, 1, at - 1) or (at - 1))
    end,
  },
  {
    id = "text_concat", summary = "Concatenate texts",
    description = "Joins the text forms of the elements of `data`, with `separator` between neighbours. Numbers " ..
      "appear in their shortest exact form (1, -1.5), booleans as `true`/`false` and null as `null`; the separator " ..
      "is converted the same way.",
    categories = { "texts" },
    parameters = {
      param("data", "The values to join.", { type = "array", items = { type = { "string", "number", "boolean", "null" } } }),
      param("separator", "Put between neighbouring elements; empty by default.",
        { type = { "string", "number", "boolean", "null" } }, { default = "" }),
    },
    returns = returns("The joined text.", meta.STRING),
    impl = function(a)
      local parts = {}
      for i = 1, #a.data do parts[i] = text_of(a.data[i]) end
      return table.concat(parts, text_of(a.separator))
    end,
  },
}
