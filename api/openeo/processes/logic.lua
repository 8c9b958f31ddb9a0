-- openEO logic processes with null as the third truth value. `and`, `or`,
-- `xor` and `if` are lazy: they receive get(name) instead of values and
-- evaluate an argument only when the outcome still depends on it.
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null = util.null, util.is_null
local param, returns = meta.param, meta.returns
local B = meta.BOOLEAN_OR_NULL

local TWO = {
  param("x", "A boolean value, evaluated first.", B),
  param("y", "A boolean value, evaluated only if the outcome still depends on it.", B),
}

-- and/or: x first; when it is the decisive value (false for and, true for
-- or) y is never evaluated. Otherwise null wins over the other value.
local function short_circuit(decisive)
  return function(get)
    local x, err = get("x")
    if err then return nil, err end
    if x == decisive then return decisive end
    local y
    y, err = get("y")
    if err then return nil, err end
    if y == decisive then return decisive end
    if is_null(x) or is_null(y) then return NULL end
    return not decisive
  end
end

-- all/any: the decisive value (false for all, true for any) anywhere in
-- data decides; otherwise a null counts unless ignore_nodata, and the
-- answer is the other value.
local function reduce_bool(decisive)
  return function(a)
    local unknown = false
    for i = 1, #a.data do
      local v = a.data[i]
      if v == decisive then return decisive end
      if is_null(v) then unknown = true end
    end
    if unknown and not a.ignore_nodata then return NULL end
    return not decisive
  end
end

return {
  {
    id = "and", summary = "Logical AND",
    description = "true if both `x` and `y` are true. `x` is evaluated first; if it is false the result is false and " ..
      "`y` is not evaluated. Otherwise null wins over true: (null, false) is false, (null, true) and (null, null) are null.",
    categories = { "logic" }, lazy = true,
    parameters = TWO,
    returns = returns("The logical AND, or null when undecided.", B),
    impl = short_circuit(false),
  },
  {
    id = "or", summary = "Logical OR",
    description = "true if `x` or `y` is true. `x` is evaluated first; if it is true the result is true and " ..
      "`y` is not evaluated. Otherwise null wins over false: (null, true) is true, (null, false) and (null, null) are null.",
    categories = { "logic" }, lazy = true,
    parameters = TWO,
    returns = returns("The logical OR, or null when undecided.", B),
    impl = short_circuit(true),
  },
  {
    id = "xor", summary = "Logical XOR",
    description = "true if exactly one of `x` and `y` is true. If either is null the result is null " ..
      "(and a null `x` spares the evaluation of `y`).",
    categories = { "logic" }, lazy = true,
    parameters = TWO,
    returns = returns("The logical XOR, or null.", B),
    impl = function(get)
      local x, err = get("x")
      if err then return nil, err end
      if is_null(x) then return NULL end
      local y
      y, err = get("y")
      if err then return nil, err end
      if is_null(y) then return NULL end
      return x ~= y
    end,
  },
  {
    id = "not", summary = "Logical NOT",
    description = "Inverts a boolean: true becomes false and false becomes true. Null stays null.",
    categories = { "logic" },
    parameters = { param("x", "The boolean to invert.", B) },
    returns = returns("The inverted value.", B),
    impl = function(a)
      if is_null(a.x) then return NULL end
      return not a.x
    end,
  },
  {
    id = "if", summary = "If-then-else",
    description = "Gives `accept` if `value` is true and `reject` otherwise (false or null). " ..
      "Only the chosen branch is evaluated.",
    categories = { "logic", "comparison", "masks" }, lazy = true,
    parameters = {
      param("value", "The condition.", B),
      param("accept", "The result when `value` is true.", meta.ANY),
      param("reject", "The result when `value` is not true. Defaults to null.", meta.ANY, { default = NULL }),
    },
    returns = returns("Either `accept` or `reject`.", meta.ANY),
    impl = function(get)
      local v, err = get("value")
      if err then return nil, err end
      if v == true then return get("accept") end
      return get("reject")
    end,
  },
  {
    id = "all", summary = "Are all values true?",
    description = "true if every element of `data` is true; an empty array gives true. By default null elements are " ..
      "skipped. With `ignore_nodata` false they count as unknown: any false still gives false, otherwise a null gives null.",
    categories = { "logic", "reducer" },
    parameters = { param("data", "The boolean values.", meta.BOOLEANS), meta.IGNORE_NODATA },
    returns = returns("The combined value.", B),
    impl = reduce_bool(false),
  },
  {
    id = "any", summary = "Is any value true?",
    description = "true if at least one element of `data` is true; an empty array gives false. By default null " ..
      "elements are skipped. With `ignore_nodata` false they count as unknown: any true still gives true, otherwise a null gives null.",
    categories = { "logic", "reducer" },
    parameters = { param("data", "The boolean values.", meta.BOOLEANS), meta.IGNORE_NODATA },
    returns = returns("The combined value.", B),
    impl = reduce_bool(true),
  },
}
