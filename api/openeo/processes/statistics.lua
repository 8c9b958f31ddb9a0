-- openEO reducers and statistics over arrays of numbers, and the cumulative
-- variants. Null elements are skipped by default (`ignore_nodata`); with
-- `ignore_nodata` false any null makes the result null. An array with no
-- numbers left gives null. NaN propagates: any NaN makes the result NaN.
local util = require("api.openeo.processes.util")
local meta = require("api.openeo.processes.meta")

local NULL, is_null, out = util.null, util.is_null, util.out
local param, returns = meta.param, meta.returns

local NAN = 0 / 0

-- numbers(data, ignore) -> list of floats, has_nan | nil (a null counted).
local function numbers(data, ignore)
  local list, nan = {}, false
  for i = 1, #data do
    local v = data[i]
    if is_null(v) then
      if not ignore then return nil end
    else
      if v ~= v then nan = true end
      list[#list + 1] = v + 0.0
    end
  end
  return list, nan
end

local function sum(list)
  local s = 0.0
  for i = 1, #list do s = s + list[i] end
  return s
end

local function variance(list)
  local n = #list
  local mean = sum(list) / n
  local acc = 0.0
  for i = 1, n do
    local d = list[i] - mean
    acc = acc + d * d
  end
  return acc / (n - 1)
end

-- Type 7 of Hyndman and Fan on a sorted list, written as a weighted sum so
-- that infinite neighbours give ±Infinity rather than NaN.
local function quantile(sorted, p)
  local n = #sorted
  local h = (n - 1) * p + 1
  local lo = math.floor(h)
  local g = h - lo
  if lo >= n then return sorted[n] end
  if g == 0 then return sorted[lo] end
  return (1 - g) * sorted[lo] + g * sorted[lo + 1]
end

local function reducer(id, summary, description, rdesc, fn, categories)
  return {
    id = id, summary = summary,
    description = description .. " Null elements are skipped unless `ignore_nodata` is false, in which case any null " ..
      "gives null. An empty array, or one with only nulls, gives null.",
    categories = categories or { "math > statistics", "reducer" },
    parameters = { param("data", "An array of numbers.", meta.NUMBERS), meta.IGNORE_NODATA },
    returns = returns(rdesc, meta.NUMBER_OR_NULL),
    impl = function(a)
      local list, nan = numbers(a.data, a.ignore_nodata)
      if not list or #list == 0 then return NULL end
      return out(fn(list, nan))
    end,
  }
end

local function extreme(list, nan, better)
  if nan then return NAN end
  local m = list[1]
  for i = 2, #list do
    if better(list[i], m) then m = list[i] end
  end
  return m
end

-- "first" or "last": the element at that end of data, by default the
-- nearest non-null one.
local function edge(which)
  local first = which == "first"
  return {
    id = which, summary = (first and "First" or "Last") .. " element",
    description = string.format("The %s element of `data`. By default null elements are skipped, giving the %s " ..
      "non-null one; with `ignore_nodata` false the very %s element is returned whatever it is. An empty array " ..
      "gives null.", which, which, which),
    categories = { "arrays", "reducer" },
    parameters = { param("data", "An array of any values.", meta.ARRAY), meta.IGNORE_NODATA },
    returns = returns("The " .. which .. " element.", meta.ANY),
    impl = function(a)
      local data = a.data
      local from, to, step = 1, #data, 1
      if not first then from, to, step = #data, 1, -1 end
      if not a.ignore_nodata then return data[from] == nil and NULL or data[from] end
      for i = from, to, step do
        if not is_null(data[i]) then return data[i] end
      end
      return NULL
    end,
  }
end

local function cumulative(id, summary, what, step)
  return {
    id = id, summary = summary,
    description = "Gives an array of the same length where each element is the " .. what .. " of all elements up to " ..
      "and including it. Null elements stay null in the result and are skipped by the accumulation; with " ..
      "`ignore_nodata` false, a null makes its own and every later element null.",
    categories = { "math > cumulative" }, experimental = true,
    parameters = { param("data", "An array of numbers.", meta.NUMBERS), meta.IGNORE_NODATA },
    returns = returns("The cumulative values.", meta.NUMBERS),
    impl = function(a)
      local res, acc, broken = {}, nil, false
      for i = 1, #a.data do
        local v = a.data[i]
        if broken then
          res[i] = NULL
        elseif is_null(v) then
          res[i] = NULL
          if not a.ignore_nodata then broken = true end
        else
          v = v + 0.0
          if acc == nil then acc = v else acc = step(acc, v) end
          res[i] = out(acc)
        end
      end
      return util.array(res)
    end,
  }
end

local function nan_aware(f)
  return function(acc, v)
    if acc ~= acc or v ~= v then return NAN end
    return f(acc, v)
  end
end

return {
  reducer("sum", "Sum of the numbers", "Adds up all elements of `data` (IEEE 754 rules for infinities).",
    "The sum.", sum, { "math", "reducer" }),
  reducer("product", "Product of the numbers", "Multiplies all elements of `data` (IEEE 754 rules for infinities).",
    "The product.", function(list)
      local p = 1.0
      for i = 1, #list do p = p * list[i] end
      return p
    end, { "math", "reducer" }),
  reducer("mean", "Arithmetic mean", "The sum of the elements divided by their count.",
    "The mean.", function(list) return sum(list) / #list end),
  reducer("median", "Median", "The middle value of the sorted elements, or the mean of the two middle values " ..
    "for an even count (the 0.5 quantile).",
    "The median.", function(list, nan)
      if nan then return NAN end
      table.sort(list)
      return quantile(list, 0.5)
    end),
  reducer("min", "Minimum value", "The smallest element of `data`.", "The minimum.",
    function(list, nan) return extreme(list, nan, function(x, m) return x < m end) end,
    { "math", "math > statistics", "reducer" }),
  reducer("max", "Maximum value", "The largest element of `data`.", "The maximum.",
    function(list, nan) return extreme(list, nan, function(x, m) return x > m end) end,
    { "math", "math > statistics", "reducer" }),
  reducer("variance", "Sample variance", "The sample variance of `data` (the sum of squared deviations from the " ..
    "mean divided by n - 1). A single element gives NaN.", "The sample variance.", variance),
  reducer("sd", "Sample standard deviation", "The square root of the sample variance of `data`. A single element gives NaN.",
    "The sample standard deviation.", function(list) return math.sqrt(variance(list)) end),
  {
    id = "extrema", summary = "Minimum and maximum",
    description = "Gives [minimum, maximum] of `data` in one pass. Null elements are skipped unless `ignore_nodata` " ..
      "is false, in which case any null gives [null, null]; so does an empty array. Any NaN gives [NaN, NaN].",
    categories = { "math > statistics" },
    parameters = { param("data", "An array of numbers.", meta.NUMBERS), meta.IGNORE_NODATA },
    returns = returns("A two-element array: the minimum, then the maximum.",
      { type = "array", minItems = 2, maxItems = 2, items = meta.NUMBER_OR_NULL }),
    impl = function(a)
      local list, nan = numbers(a.data, a.ignore_nodata)
      if not list or #list == 0 then return util.array({ NULL, NULL }) end
      return util.array({
        out(extreme(list, nan, function(x, m) return x < m end)),
        out(extreme(list, nan, function(x, m) return x > m end)),
      })
    end,
  },
  {
    id = "quantiles", summary = "Quantiles",
    description = "Computes sample quantiles of `data` with type 7 of Hyndman and Fan (linear interpolation between " ..
      "order statistics, as in R's and NumPy's defaults). `probabilities` is either a list of probabilities in " ..
      "ascending order or a number q of equal intervals, giving the q-1 cut points. Null elements are skipped " ..
      "unless `ignore_nodata` is false, in which case any null gives an array of nulls; an empty array also gives " ..
      "nulls, one per requested quantile. Any NaN gives NaNs.",
    categories = { "math > statistics" },
    parameters = {
      param("data", "An array of numbers.", meta.NUMBERS),
      param("probabilities", "Ascending probabilities between 0 and 1, or the number of equal intervals (at least 2).", {
        { type = "array", items = { type = "number", minimum = 0, maximum = 1 } },
        { type = "integer", minimum = 2 },
      }, { optional = true }),
      param("q", "Deprecated: the number of equal intervals; use `probabilities` instead.",
        { type = "integer", minimum = 2 }, { optional = true, deprecated = true }),
      meta.IGNORE_NODATA,
    },
    returns = returns("The quantiles, in the order of the probabilities.", meta.NUMBERS),
    exceptions = {
      QuantilesParameterMissing = { message = "Either `probabilities` or `q` must be given." },
      QuantilesParameterConflict = { message = "Only one of `probabilities` and `q` may be given." },
      AscendingProbabilitiesRequired = { message = "The probabilities must be in ascending order." },
    },
    impl = function(a)
      local probs, q = a.probabilities, a.q
      if is_null(probs) and is_null(q) then
        return util.fail("QuantilesParameterMissing", "quantiles needs either `probabilities` or `q`.")
      end
      if not is_null(probs) and not is_null(q) then
        return util.fail("QuantilesParameterConflict", "quantiles takes `probabilities` or `q`, not both.")
      end
      local ps = {}
      if type(probs) == "table" then
        for i = 1, #probs do
          if i > 1 and probs[i] < probs[i - 1] then
            return util.fail("AscendingProbabilitiesRequired", "quantiles: the probabilities must be in ascending order.")
          end
          ps[i] = probs[i]
        end
      else
        local n = is_null(probs) and q or probs
        for k = 1, n - 1 do ps[k] = k / n end
      end
      local res = {}
      local list, nan = numbers(a.data, a.ignore_nodata)
      if not list or #list == 0 or nan then
        for i = 1, #ps do res[i] = (list and nan) and NAN or NULL end
        return util.array(res)
      end
      table.sort(list)
      for i = 1, #ps do res[i] = out(quantile(list, ps[i])) end
      return util.array(res)
    end,
  },
  {
    id = "count", summary = "Count the elements that match a condition",
    description = "Counts the elements of `data` for which `condition` holds. Without a condition (null) it counts " ..
      "the valid elements (see `is_valid`); `true` counts every element; a child process is called with each element " ..
      "as `x` and counts it when it returns true.",
    categories = { "arrays", "math > statistics", "reducer" },
    parameters = {
      param("data", "An array of any values.", meta.ARRAY),
      param("condition", "null to count valid elements, true to count all, or a child process returning a boolean.", {
        meta.callback({
          meta.param("x", "The element being checked.", meta.ANY),
          meta.param("context", "The `context` given to `count`.", meta.ANY, { default = NULL }),
        }, "true if the element is to be counted.", meta.BOOLEAN),
        { type = "boolean", const = true },
        { type = "null" },
      }, { default = NULL }),
      meta.CONTEXT,
    },
    returns = returns("The number of matching elements.", { type = "integer", minimum = 0 }),
    impl = function(a)
      local data, cond, n = a.data, a.condition, 0
      if cond == true then return #data end
      for i = 1, #data do
        local v = data[i]
        if type(cond) == "function" then
          local r, err = cond({ x = v, context = a.context })
          if err then return nil, err end
          if r == true then n = n + 1 end
        elseif not is_null(v) and not (type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge)) then
          n = n + 1
        end
      end
      return n
    end,
  },
  edge("first"),
  edge("last"),
  cumulative("cumsum", "Cumulative sums", "sum", function(acc, v) return acc + v end),
  cumulative("cumproduct", "Cumulative products", "product", function(acc, v) return acc * v end),
  cumulative("cummin", "Cumulative minima", "minimum", nan_aware(function(acc, v) return v < acc and v or acc end)),
  cumulative("cummax", "Cumulative maxima", "maximum", nan_aware(function(acc, v) return v > acc and v or acc end)),
}
