-- Tests for the openEO process implementations (api/openeo/processes): each
-- case runs one process as a one-node graph through graph.evaluate, so that
-- defaults and argument checks apply as they do for clients.
package.path = "./?.lua;./?/init.lua;" .. package.path
local json = require("jobrt.json")
local graph = require("api.openeo.graph")
local registry = require("api.openeo.processes")
local util = require("api.openeo.processes.util")

local NULL = json.null
local NAN, INF = 0 / 0, math.huge

local function J(text) return json.decode(text) end

-- Error marker for expected results.
local function ERR(code) return { err = code } end

local function call(pid, args)
  if type(args) == "string" then
    args = J(args)
  else
    args = json.object(args or {})
  end
  return graph.evaluate({ n = { process_id = pid, arguments = args, result = true } }, registry)
end

-- Deep comparison with NaN equal to NaN and a tolerance for floats.
local function close(a, b)
  if type(a) == "number" and type(b) == "number" then
    if a ~= a or b ~= b then return a ~= a and b ~= b end
    if a == b then return true end
    return math.abs(a - b) <= 1e-9 * math.max(1, math.abs(b))
  end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if a == NULL or b == NULL then return a == b end
  for k, v in pairs(a) do
    if not close(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function show(v)
  if type(v) == "number" then return util.number_text(v) end
  if type(v) == "table" and v ~= NULL then
    local ok, s = pcall(require("api.openeo.eval").encode, v, "string")
    if ok and s then return s end
  end
  return tostring(v)
end

-- cases: { process_id, arguments (JSON text or Lua table), expected }
local function run_cases(t, cases)
  for _, c in ipairs(cases) do
    local pid, args, want = c[1], c[2], c[3]
    local got, e = call(pid, args)
    local label = pid .. " " .. (type(args) == "string" and args or "(table)")
    if type(want) == "table" and want.err then
      t.ok(got == nil and e and e.code == want.err,
        label .. ": expected error " .. want.err .. ", got " .. show(got) .. (e and (" " .. e.code) or ""))
    elseif e then
      t.ok(false, label .. ": unexpected error " .. e.code .. ": " .. e.message)
    else
      t.ok(close(got, want), label .. ": expected " .. show(want) .. ", got " .. show(got))
    end
  end
end

return {
  { "arithmetic with null, NaN and infinities", function(t)
    run_cases(t, {
      { "absolute", '{"x": -0.5}', 0.5 }, { "absolute", '{"x": null}', NULL }, { "absolute", { x = -INF }, INF },
      { "add", '{"x": 0.1, "y": 0.2}', 0.3 }, { "add", '{"x": 1, "y": null}', NULL }, { "add", { x = INF, y = -INF }, NAN },
      -- Integers never wrap around: 2^62 + 2^62 is 2^63 as a float.
      { "add", '{"x": 4611686018427387904, "y": 4611686018427387904}', 2.0 ^ 63 },
      { "subtract", '{"x": 1, "y": 3.5}', -2.5 }, { "subtract", '{"x": null, "y": 1}', NULL },
      { "multiply", '{"x": -4, "y": 2.5}', -10 }, { "multiply", '{"x": null, "y": null}', NULL },
      { "multiply", { x = 0, y = INF }, NAN },
      { "divide", '{"x": 7, "y": 2}', 3.5 }, { "divide", '{"x": -3, "y": 0}', -INF },
      { "divide", '{"x": 0, "y": 0}', NAN }, { "divide", '{"x": 5, "y": null}', NULL },
      { "mod", '{"x": -7, "y": 3}', 2 }, { "mod", '{"x": 7, "y": -3}', -2 }, { "mod", '{"x": 5.5, "y": 2}', 1.5 },
      { "mod", '{"x": 1, "y": 0}', INF }, { "mod", '{"x": 0, "y": 0}', NAN }, { "mod", { x = 3, y = INF }, 3 },
      { "mod", { x = INF, y = 3 }, NAN }, { "mod", '{"x": null, "y": 3}', NULL },
      { "power", '{"base": 2, "p": 10}', 1024 }, { "power", '{"base": -8, "p": 0.5}', NAN },
      { "power", '{"base": 4, "p": -0.5}', 0.5 }, { "power", '{"base": null, "p": 2}', NULL },
      { "sqrt", '{"x": 16}', 4 }, { "sqrt", '{"x": -4}', NAN }, { "sqrt", '{"x": null}', NULL },
      { "exp", '{"p": 1}', math.exp(1) }, { "exp", { p = -INF }, 0 },
      { "ln", { x = math.exp(2) }, 2 }, { "ln", '{"x": 0}', -INF }, { "ln", '{"x": -1}', NAN },
      { "log", '{"x": 8, "base": 2}', 3 }, { "log", '{"x": 1000, "base": 10}', 3 }, { "log", '{"x": 81, "base": 3}', 4 },
      { "log", '{"x": -1, "base": 10}', NAN }, { "log", '{"x": 5, "base": null}', NULL },
      { "sgn", '{"x": -0.1}', -1 }, { "sgn", '{"x": 0}', 0 }, { "sgn", '{"x": 3}', 1 }, { "sgn", { x = NAN }, NAN },
      { "e", '{}', math.exp(1) }, { "pi", '{}', math.pi }, { "nan", '{}', NAN },
      { "normalized_difference", '{"x": 3, "y": 1}', 0.5 }, { "normalized_difference", '{"x": 0, "y": 0}', NAN },
      { "normalized_difference", '{"x": null, "y": 1}', NULL },
    })
  end },
  { "integer results are Lua integers", function(t)
    t.eq(math.type((call("add", '{"x": 2.5, "y": 0.5}'))), "integer")
    t.eq(math.type((call("int", '{"x": -2.7}'))), "integer")
    t.eq(math.type((call("divide", '{"x": 1, "y": 4}'))), "float")
  end },
  { "clip and linear_scale_range", function(t)
    run_cases(t, {
      { "clip", '{"x": 5, "min": 0, "max": 3}', 3 }, { "clip", '{"x": -1, "min": 0, "max": 3}', 0 },
      { "clip", '{"x": 2, "min": 0, "max": 3}', 2 }, { "clip", '{"x": null, "min": 0, "max": 3}', NULL },
      { "clip", '{"x": 1, "min": 3, "max": 0}', ERR("MinMaxSwapped") },
      { "clip", '{"x": null, "min": 3, "max": 0}', ERR("MinMaxSwapped") },
      { "clip", { x = NAN, min = 0, max = 1 }, NAN },
      { "linear_scale_range", '{"x": 5, "inputMin": 0, "inputMax": 10, "outputMin": 0, "outputMax": 100}', 50 },
      { "linear_scale_range", '{"x": 15, "inputMin": 0, "inputMax": 10}', 1 },
      { "linear_scale_range", '{"x": -5, "inputMin": 0, "inputMax": 10}', 0 },
      { "linear_scale_range", '{"x": 2, "inputMin": 10, "inputMax": 0}', 0.8 },
      { "linear_scale_range", '{"x": 0.5, "inputMin": 0, "inputMax": 1, "outputMin": 255, "outputMax": 0}', 127.5 },
      { "linear_scale_range", '{"x": null, "inputMin": 0, "inputMax": 1}', NULL },
      { "linear_scale_range", '{"x": 1, "inputMin": 0}', ERR("ProcessParameterRequired") },
    })
  end },
  { "rounding: int, floor, ceil, round half to even", function(t)
    run_cases(t, {
      { "int", '{"x": -2.7}', -2 }, { "int", '{"x": 2.7}', 2 }, { "int", '{"x": null}', NULL }, { "int", { x = -INF }, -INF },
      { "floor", '{"x": -2.5}', -3 }, { "floor", '{"x": 2.5}', 2 }, { "floor", { x = NAN }, NAN },
      { "ceil", '{"x": -2.5}', -2 }, { "ceil", '{"x": 2.1}', 3 }, { "ceil", '{"x": null}', NULL },
      { "round", '{"x": 2.5}', 2 }, { "round", '{"x": 3.5}', 4 }, { "round", '{"x": -0.5}', 0 },
      { "round", '{"x": -1.5}', -2 }, { "round", '{"x": 2.4999}', 2 }, { "round", '{"x": 2.51}', 3 },
      { "round", '{"x": 12.345, "p": 1}', 12.3 }, { "round", '{"x": 0.125, "p": 2}', 0.12 },
      { "round", '{"x": 0.375, "p": 2}', 0.38 },
      { "round", '{"x": 15, "p": -1}', 20 }, { "round", '{"x": 25, "p": -1}', 20 }, { "round", '{"x": 35, "p": -1}', 40 },
      { "round", '{"x": 1234.5678, "p": -2}', 1200 }, { "round", '{"x": null, "p": 3}', NULL },
      { "round", { x = INF, p = 2 }, INF }, { "round", { x = 1e300, p = 10 }, 1e300 },
    })
  end },
  { "trigonometric and hyperbolic functions", function(t)
    local pi = math.pi
    run_cases(t, {
      { "sin", { x = pi / 2 }, 1 }, { "cos", '{"x": 0}', 1 }, { "tan", '{"x": 0}', 0 }, { "sin", '{"x": null}', NULL },
      { "cos", { x = INF }, NAN },
      { "arcsin", '{"x": 1}', pi / 2 }, { "arcsin", '{"x": 1.5}', NAN }, { "arccos", '{"x": -1}', pi },
      { "arctan", '{"x": 1}', pi / 4 }, { "arctan", { x = -INF }, -pi / 2 },
      { "arctan2", '{"y": 1, "x": -1}', 3 * pi / 4 }, { "arctan2", '{"y": 0, "x": -1}', pi },
      { "arctan2", '{"y": null, "x": 1}', NULL },
      { "sinh", '{"x": 1}', 1.1752011936438014 }, { "sinh", '{"x": 1e-8}', 1e-8 }, { "sinh", { x = -INF }, -INF },
      { "cosh", '{"x": 1}', 1.5430806348152437 }, { "cosh", '{"x": 0}', 1 },
      { "tanh", '{"x": 0.5}', 0.46211715726000974 }, { "tanh", '{"x": 100}', 1 }, { "tanh", '{"x": -100}', -1 },
      { "arsinh", '{"x": 1}', 0.881373587019543 }, { "arsinh", '{"x": -1}', -0.881373587019543 },
      { "arsinh", '{"x": 1e200}', math.log(1e200) + math.log(2) },
      { "arcosh", '{"x": 2}', 1.3169578969248166 }, { "arcosh", '{"x": 0.5}', NAN }, { "arcosh", '{"x": 1}', 0 },
      { "artanh", '{"x": 0.5}', 0.5493061443340549 }, { "artanh", '{"x": 1}', INF }, { "artanh", '{"x": -2}', NAN },
      { "artanh", '{"x": null}', NULL },
    })
  end },
  { "equality: strict types, delta, case, NaN, null", function(t)
    run_cases(t, {
      { "eq", '{"x": 1, "y": 1.0}', true }, { "eq", '{"x": 1, "y": "1"}', false }, { "eq", '{"x": true, "y": 1}', false },
      { "eq", '{"x": "a", "y": "A"}', false }, { "eq", '{"x": "a", "y": "A", "case_sensitive": false}', true },
      { "eq", '{"x": "Ärger", "y": "äRGER", "case_sensitive": false}', true },
      { "eq", '{"x": "Ωμέγα", "y": "ΩΜΈΓΑ", "case_sensitive": false}', true },
      { "eq", '{"x": "Привет", "y": "ПРИВЕТ", "case_sensitive": false}', true },
      { "eq", '{"x": 10, "y": 10.4, "delta": 0.5}', true }, { "eq", '{"x": 10, "y": 10.6, "delta": 0.5}', false },
      { "eq", '{"x": null, "y": null}', NULL }, { "eq", '{"x": 1, "y": null}', NULL }, { "eq", { x = NAN, y = NAN }, false },
      { "eq", '{"x": 1, "y": 1, "delta": 0}', ERR("ProcessParameterInvalid") },
      { "eq", '{"x": [1], "y": [1]}', ERR("ProcessParameterInvalid") },
      { "neq", { x = NAN, y = NAN }, true }, { "neq", '{"x": "b", "y": "B", "case_sensitive": false}', false },
      { "neq", '{"x": 0, "y": false}', true }, { "neq", '{"x": null, "y": 2}', NULL },
    })
  end },
  { "ordering comparisons and between", function(t)
    run_cases(t, {
      { "gt", '{"x": 2, "y": 1}', true }, { "gt", '{"x": "b", "y": "a"}', false }, { "gt", '{"x": null, "y": 1}', NULL },
      { "gt", { x = INF, y = 1e308 }, true }, { "gt", { x = NAN, y = 0 }, false },
      { "gte", '{"x": 1, "y": 1}', true }, { "gte", '{"x": "a", "y": "a"}', true }, { "gte", '{"x": "b", "y": "a"}', false },
      { "gte", '{"x": true, "y": true}', true }, { "gte", '{"x": 0.5, "y": 1}', false },
      { "lt", '{"x": -1, "y": 0}', true }, { "lt", '{"x": false, "y": true}', false },
      { "lte", '{"x": 2, "y": 2.0}', true }, { "lte", '{"x": "2020-01-01", "y": "2021-01-01"}', false },
      { "between", '{"x": 0.5, "min": 0, "max": 1}', true }, { "between", '{"x": 1, "min": 0, "max": 1}', true },
      { "between", '{"x": 1, "min": 0, "max": 1, "exclude_max": true}', false },
      { "between", '{"x": 0, "min": 0, "max": 1, "exclude_max": true}', true },
      { "between", '{"x": 0.5, "min": 1, "max": 0}', false }, { "between", '{"x": "0.5", "min": 0, "max": 1}', false },
      { "between", '{"x": null, "min": 0, "max": 1}', NULL }, { "between", { x = NAN, min = 0, max = 1 }, false },
    })
  end },
  { "value tests: is_nan, is_nodata, is_valid, is_infinite", function(t)
    run_cases(t, {
      { "is_nan", { x = NAN }, true }, { "is_nan", '{"x": "NaN"}', false }, { "is_nan", '{"x": null}', false },
      { "is_nodata", '{"x": null}', true }, { "is_nodata", { x = NAN }, false }, { "is_nodata", '{"x": [null]}', false },
      { "is_valid", '{"x": 0}', true }, { "is_valid", { x = INF }, false }, { "is_valid", { x = NAN }, false },
      { "is_valid", '{"x": null}', false }, { "is_valid", '{"x": {}}', true }, { "is_valid", '{"x": ""}', true },
      { "is_infinite", { x = -INF }, true }, { "is_infinite", '{"x": 1e308}', false }, { "is_infinite", '{"x": "inf"}', false },
    })
  end },
  { "logic truth tables with null", function(t)
    local T, F, N = true, false, NULL
    local tables = {
      ["and"] = { { T, T, T }, { T, F, F }, { T, N, N }, { F, T, F }, { F, F, F }, { F, N, F }, { N, T, N }, { N, F, F }, { N, N, N } },
      ["or"] = { { T, T, T }, { T, F, T }, { T, N, T }, { F, T, T }, { F, F, F }, { F, N, N }, { N, T, T }, { N, F, N }, { N, N, N } },
      ["xor"] = { { T, T, F }, { T, F, T }, { T, N, N }, { F, T, T }, { F, F, F }, { F, N, N }, { N, T, N }, { N, F, N }, { N, N, N } },
    }
    for pid, rows in pairs(tables) do
      for _, r in ipairs(rows) do
        local got, e = call(pid, { x = r[1], y = r[2] })
        t.eq(got, r[3], string.format("%s(%s, %s)", pid, tostring(r[1]), tostring(r[2])))
        t.eq(e, nil)
      end
    end
    run_cases(t, {
      { "not", '{"x": true}', false }, { "not", '{"x": null}', NULL },
      { "and", '{"x": 1, "y": true}', ERR("ProcessParameterInvalid") },
      { "if", '{"value": true, "accept": 1, "reject": 2}', 1 }, { "if", '{"value": false, "accept": 1}', NULL },
      { "if", '{"value": null, "accept": 1, "reject": [2]}', J("[2]") },
      { "all", '{"data": []}', true }, { "all", '{"data": [true, null]}', true },
      { "all", '{"data": [true, null], "ignore_nodata": false}', NULL },
      { "all", '{"data": [null, false], "ignore_nodata": false}', false }, { "all", '{"data": [null]}', true },
      { "any", '{"data": []}', false }, { "any", '{"data": [false, null]}', false },
      { "any", '{"data": [false, null], "ignore_nodata": false}', NULL },
      { "any", '{"data": [null, true], "ignore_nodata": false}', true },
    })
  end },
  { "reducers with ignore_nodata, empty arrays and special values", function(t)
    run_cases(t, {
      { "sum", '{"data": [1, 2.5, null]}', 3.5 }, { "sum", '{"data": [1, null], "ignore_nodata": false}', NULL },
      { "sum", '{"data": []}', NULL }, { "sum", '{"data": [null, null]}', NULL }, { "sum", { data = { 1, INF } }, INF },
      { "product", '{"data": [2, -3, null]}', -6 }, { "product", '{"data": []}', NULL },
      { "mean", '{"data": [1, 2, 3, null]}', 2 }, { "mean", '{"data": [null]}', NULL },
      { "mean", '{"data": [1, null], "ignore_nodata": false}', NULL },
      { "median", '{"data": [5, 1, 3]}', 3 }, { "median", '{"data": [4, 1, 3, 2]}', 2.5 },
      { "median", '{"data": [7]}', 7 }, { "median", { data = { 1, NAN, 3 } }, NAN }, { "median", '{"data": []}', NULL },
      { "min", '{"data": [3, -1, null, 2]}', -1 }, { "min", { data = { 1, -INF } }, -INF }, { "min", { data = { NAN, 1 } }, NAN },
      { "max", '{"data": [3, -1, null, 2]}', 3 }, { "max", '{"data": [null]}', NULL },
      { "max", '{"data": [1, null], "ignore_nodata": false}', NULL },
      { "variance", '{"data": [1, 2, 3, 4]}', 5 / 3 }, { "variance", '{"data": [5]}', NAN },
      { "sd", '{"data": [2, 4, 4, 4, 5, 5, 7, 9]}', math.sqrt(32 / 7) }, { "sd", '{"data": []}', NULL },
      { "extrema", '{"data": [3, null, -2, 8]}', J("[-2, 8]") }, { "extrema", '{"data": []}', J("[null, null]") },
      { "extrema", '{"data": [1, null], "ignore_nodata": false}', J("[null, null]") },
      { "sum", '{"data": [1, "2"]}', ERR("ProcessParameterInvalid") },
    })
  end },
  { "quantiles (type 7)", function(t)
    run_cases(t, {
      { "quantiles", '{"data": [1, 2, 3, 4, 5], "probabilities": [0, 0.25, 0.5, 1]}', J("[1, 2, 3, 5]") },
      { "quantiles", '{"data": [10, 20], "probabilities": [0.3]}', J("[13]") },
      { "quantiles", '{"data": [4, 1, 3, 2], "probabilities": 2}', J("[2.5]") },
      { "quantiles", '{"data": [4, 1, 3, 2], "q": 4}', J("[1.75, 2.5, 3.25]") },
      { "quantiles", '{"data": [1, null, 3], "probabilities": [0.5]}', J("[2]") },
      { "quantiles", '{"data": [1, null, 3], "probabilities": [0.5, 1], "ignore_nodata": false}', J("[null, null]") },
      { "quantiles", '{"data": [], "probabilities": 3}', J("[null, null]") },
      { "quantiles", '{"data": [1, 2]}', ERR("QuantilesParameterMissing") },
      { "quantiles", '{"data": [1, 2], "probabilities": [0.5], "q": 2}', ERR("QuantilesParameterConflict") },
      { "quantiles", '{"data": [1, 2], "probabilities": [0.5, 0.1]}', ERR("AscendingProbabilitiesRequired") },
      { "quantiles", '{"data": [1, 2], "probabilities": [1.5]}', ERR("ProcessParameterInvalid") },
      { "quantiles", '{"data": [1, 2], "probabilities": 1}', ERR("ProcessParameterInvalid") },
    })
  end },
  { "count, first, last and the cumulative processes", function(t)
    run_cases(t, {
      { "count", '{"data": [1, null, "a", [], {}]}', 4 }, { "count", { data = json.array({ 1, NAN, INF }) }, 1 },
      { "count", '{"data": [null, null], "condition": true}', 2 }, { "count", '{"data": []}', 0 },
      { "count", '{"data": [1], "condition": false}', ERR("ProcessParameterInvalid") },
      { "first", '{"data": [null, 2, 3]}', 2 }, { "first", '{"data": [null, 2], "ignore_nodata": false}', NULL },
      { "first", '{"data": []}', NULL }, { "last", '{"data": [1, "x", null]}', "x" },
      { "last", '{"data": [1, null], "ignore_nodata": false}', NULL }, { "last", '{"data": [null]}', NULL },
      { "cumsum", '{"data": [1, 2, null, 3]}', J("[1, 3, null, 6]") },
      { "cumsum", '{"data": [1, null, 3], "ignore_nodata": false}', J("[1, null, null]") },
      { "cumproduct", '{"data": [2, 3, 4]}', J("[2, 6, 24]") }, { "cumsum", '{"data": []}', J("[]") },
      { "cummin", '{"data": [3, 1, 2, null, 0]}', J("[3, 1, 1, null, 0]") },
      { "cummax", '{"data": [null, 1, 3, 2]}', J("[null, 1, 3, 3]") },
      { "cummax", { data = json.array({ 1, NAN, 5 }) }, json.array({ 1, NAN, NAN }) },
    })
  end },
  { "array access and labels", function(t)
    local bands = util.labeled({ 0.1, 0.2, 0.3 }, { "B02", "B03", "B04" })
    run_cases(t, {
      { "array_element", '{"data": [5, 6, 7], "index": 2}', 7 },
      { "array_element", '{"data": [5, 6, 7], "index": 3}', ERR("ArrayElementNotAvailable") },
      { "array_element", '{"data": [5], "index": -1}', ERR("ArrayElementNotAvailable") },
      { "array_element", '{"data": [5], "index": 3, "return_nodata": true}', NULL },
      { "array_element", '{"data": [5]}', ERR("ArrayElementParameterMissing") },
      { "array_element", '{"data": [5], "index": 0, "label": "a"}', ERR("ArrayElementParameterConflict") },
      { "array_element", '{"data": [5], "label": "a"}', ERR("ArrayNotLabeled") },
      { "array_element", { data = bands, label = "B03" }, 0.2 },
      { "array_element", { data = bands, label = "B08" }, ERR("ArrayElementNotAvailable") },
      { "array_element", { data = bands, index = 0 }, 0.1 },
      { "array_labels", { data = bands }, J('["B02", "B03", "B04"]') }, { "array_labels", '{"data": [7, 8]}', J("[0, 1]") },
      { "array_labels", '{"data": []}', J("[]") },
      { "array_find_label", { data = bands, label = "B04" }, 2 }, { "array_find_label", '{"data": [1], "label": 0}', NULL },
      { "array_append", '{"data": [1], "value": null}', J("[1, null]") },
      { "array_append", '{"data": [1], "value": 2, "label": "x"}', ERR("ArrayNotLabeled") },
      { "array_append", { data = bands, value = 0.9, label = "B02" }, ERR("LabelExists") },
      { "array_create_labeled", '{"data": [1], "labels": ["a", "b"]}', ERR("ArrayLengthMismatch") },
      { "array_create_labeled", '{"data": [1, 2], "labels": ["a", "a"]}', ERR("LabelExists") },
    })
    -- Labels travel with the values.
    local v = call("array_append", { data = bands, value = 0.9, label = "B08" })
    t.eq(util.labels_of(v), json.array({ "B02", "B03", "B04", "B08" }))
    v = call("array_append", { data = bands, value = 0.9 })
    t.eq(util.labels_of(v), json.array({ "B02", "B03", "B04", 3 }))
    t.eq(#util.labels_of(bands), 3, "the input is not modified")
    v = call("array_concat", { array1 = bands, array2 = util.labeled({ 1 }, { "B08" }) })
    t.eq(util.labels_of(v)[4], "B08")
    v = call("array_concat", { array1 = bands, array2 = json.array({ 1 }) })
    t.eq(util.labels_of(v), nil)
    t.eq(#v, 4)
    local _, e = call("array_concat", { array1 = bands, array2 = util.labeled({ 1 }, { "B03" }) })
    t.eq(e.code, "ArrayLabelConflict")
    v = call("array_create_labeled", J('{"data": [1, 2], "labels": [10, 20]}'))
    t.eq(util.labels_of(v), json.array({ 10, 20 }))
  end },
  { "searching, creating and modifying arrays", function(t)
    run_cases(t, {
      { "array_find", '{"data": [1, 2, 1], "value": 1}', 0 }, { "array_find", '{"data": [1, 2, 1], "value": 1, "reverse": true}', 2 },
      { "array_find", '{"data": [1, 2], "value": "1"}', NULL }, { "array_find", '{"data": [null], "value": null}', NULL },
      { "array_find", '{"data": [[1]], "value": [1]}', NULL }, { "array_find", '{"data": [1.0], "value": 1}', 0 },
      { "array_contains", '{"data": ["a", "b"], "value": "b"}', true }, { "array_contains", '{"data": [null], "value": null}', false },
      { "array_contains", '{"data": [true], "value": 1}', false },
      { "array_create", '{}', J("[]") }, { "array_create", '{"data": [1, 2], "repeat": 3}', J("[1, 2, 1, 2, 1, 2]") },
      { "array_create", '{"data": [1], "repeat": 0}', ERR("ProcessParameterInvalid") },
      { "array_concat", '{"array1": [], "array2": []}', J("[]") },
      { "array_modify", '{"data": [1, 2, 3], "values": [9], "index": 1}', J("[1, 9, 3]") },
      { "array_modify", '{"data": [1, 2, 3], "values": [8, 9], "index": 1, "length": 0}', J("[1, 8, 9, 2, 3]") },
      { "array_modify", '{"data": [1, 2, 3], "values": [], "index": 0, "length": 2}', J("[3]") },
      { "array_modify", '{"data": [1, 2, 3], "values": [4], "index": 3, "length": 0}', J("[1, 2, 3, 4]") },
      { "array_modify", '{"data": [1], "values": [4], "index": 5}', ERR("ArrayElementNotAvailable") },
      { "rearrange", '{"data": ["a", "b", "c"], "order": [2, 0]}', J('["c", "a"]') },
      { "rearrange", '{"data": ["a"], "order": [1]}', ERR("ProcessParameterInvalid") },
    })
  end },
  { "array_interpolate_linear", function(t)
    run_cases(t, {
      { "array_interpolate_linear", '{"data": [null, 2, null, null, 8, null]}', J("[null, 2, 4, 6, 8, null]") },
      { "array_interpolate_linear", { data = json.array({ 0, NAN, 10 }) }, J("[0, 5, 10]") },
      { "array_interpolate_linear", '{"data": [null, 1, null]}', J("[null, 1, null]") },
      { "array_interpolate_linear", '{"data": []}', J("[]") },
    })
    -- Numeric and temporal labels are the x axis.
    local v = call("array_interpolate_linear", { data = util.labeled({ 0, NULL, 10 }, { 0, 1, 5 }) })
    t.eq(v[2], 2)
    v = call("array_interpolate_linear", { data = util.labeled({ 0, NULL, 30 },
      { "2020-01-01", "2020-01-11", "2020-01-31" }) })
    t.eq(v[2], 10)
    t.eq(util.labels_of(v)[3], "2020-01-31")
  end },
  { "order and sort", function(t)
    local data = '[3, null, 1, 2, null, 1]'
    run_cases(t, {
      { "order", '{"data": ' .. data .. '}', J("[2, 5, 3, 0]") },
      { "order", '{"data": ' .. data .. ', "asc": false}', J("[0, 3, 2, 5]") },
      { "order", '{"data": ' .. data .. ', "nodata": true}', J("[2, 5, 3, 0, 1, 4]") },
      { "order", '{"data": ' .. data .. ', "nodata": false}', J("[1, 4, 2, 5, 3, 0]") },
      { "sort", '{"data": ' .. data .. '}', J("[1, 1, 2, 3]") },
      { "sort", '{"data": ' .. data .. ', "asc": false, "nodata": true}', J("[3, 2, 1, 1, null, null]") },
      { "sort", '{"data": []}', J("[]") },
      -- Dates as instants: 01:00+02:00 is 23:00 UTC the day before.
      { "sort", '{"data": ["2020-01-02", "2020-01-02T01:00:00+02:00", "2020-01-01T12:00:00Z"]}',
        J('["2020-01-01T12:00:00Z", "2020-01-02T01:00:00+02:00", "2020-01-02"]') },
      { "sort", { data = json.array({ 2, NAN, -INF }) }, json.array({ -INF, 2, NAN }) },
      { "sort", '{"data": ["b", "a"]}', ERR("ProcessParameterInvalid") },
    })
  end },
  { "texts", function(t)
    run_cases(t, {
      { "text_begins", '{"data": "Sentinel-2A", "pattern": "sentinel", "case_sensitive": false}', true },
      { "text_begins", '{"data": "Sentinel-2A", "pattern": "sentinel"}', false },
      { "text_begins", '{"data": "abc", "pattern": ""}', true }, { "text_begins", '{"data": null, "pattern": "a"}', NULL },
      { "text_ends", '{"data": "file.TIF", "pattern": ".tif", "case_sensitive": false}', true },
      { "text_ends", '{"data": "a", "pattern": "ba"}', false }, { "text_ends", '{"data": "abc", "pattern": ""}', true },
      { "text_contains", '{"data": "a.b", "pattern": "."}', true }, { "text_contains", '{"data": "ab", "pattern": "%"}', false },
      { "text_contains", '{"data": "GRÜN", "pattern": "rü", "case_sensitive": false}', true },
      { "text_find", '{"data": "ÄÖÜ-x", "pattern": "x"}', 4 }, { "text_find", '{"data": "abc", "pattern": "z"}', NULL },
      { "text_concat", '{"data": ["a", 1, 0.1, -2.5, true, null], "separator": "|"}', "a|1|0.1|-2.5|true|null" },
      { "text_concat", '{"data": [1, 2], "separator": null}', "1null2" },
      { "text_concat", '{"data": [1.5, 1e21]}', "1.51e+21" }, { "text_concat", '{"data": []}', "" },
      { "text_concat", '{"data": [[1]]}', ERR("ProcessParameterInvalid") },
    })
  end },
  { "date_shift across month ends, leap years and zones", function(t)
    run_cases(t, {
      { "date_shift", '{"date": "2021-01-31", "value": 1, "unit": "month"}', "2021-02-28" },
      { "date_shift", '{"date": "2024-03-31", "value": -1, "unit": "month"}', "2024-02-29" },
      { "date_shift", '{"date": "2024-02-29T10:00:00Z", "value": 4, "unit": "year"}', "2028-02-29T10:00:00Z" },
      { "date_shift", '{"date": "2024-02-29T10:00:00Z", "value": -1, "unit": "year"}', "2023-02-28T10:00:00Z" },
      { "date_shift", '{"date": "2020-12-15", "value": 14, "unit": "month"}', "2022-02-15" },
      { "date_shift", '{"date": "2020-01-15", "value": -13, "unit": "month"}', "2018-12-15" },
      { "date_shift", '{"date": "2020-12-28", "value": 1, "unit": "week"}', "2021-01-04" },
      { "date_shift", '{"date": "2021-03-01T00:30:00-05:00", "value": -1, "unit": "day"}', "2021-02-28T00:30:00-05:00" },
      { "date_shift", '{"date": "2021-01-01T23:30:00+01:00", "value": 45, "unit": "minute"}', "2021-01-02T00:15:00+01:00" },
      { "date_shift", '{"date": "2020-01-01T00:00:00.250Z", "value": -500, "unit": "millisecond"}', "2019-12-31T23:59:59.750Z" },
      { "date_shift", '{"date": "2020-03-01", "value": -1, "unit": "day"}', "2020-02-29" },
      { "date_shift", '{"date": "2020-03-01", "value": -1, "unit": "second"}', "2020-02-29" },
      { "date_shift", '{"date": "2016-12-31T23:59:60Z", "value": 0, "unit": "day"}', "2017-01-01T00:00:00Z" },
      { "date_shift", '{"date": "1969-12-31T23:00:00Z", "value": 2, "unit": "hour"}', "1970-01-01T01:00:00Z" },
      { "date_shift", '{"date": "2020-02-30", "value": 1, "unit": "day"}', ERR("ProcessParameterInvalid") },
      { "date_shift", '{"date": "2020-01-01", "value": 1.5, "unit": "day"}', ERR("ProcessParameterInvalid") },
    })
  end },
  { "date_between and date_difference", function(t)
    run_cases(t, {
      { "date_between", '{"x": "2020-01-01T01:00:00+01:00", "min": "2020-01-01", "max": "2020-01-02"}', true },
      { "date_between", '{"x": "2020-01-02", "min": "2020-01-01", "max": "2020-01-02", "exclude_max": true}', false },
      { "date_between", '{"x": "2019-12-31T23:59:59Z", "min": "2020-01-01", "max": "2020-01-02"}', false },
      { "date_between", '{"x": "2020-06-01", "min": "2021-01-01", "max": "2020-01-01"}', false },
      { "date_between", '{"x": "12:30:00", "min": "12:00:00", "max": "13:00:00"}', true },
      { "date_between", '{"x": "2020-05-05T12:30:00Z", "min": "12:00:00", "max": "13:00:00"}', true },
      { "date_between", '{"x": null, "min": "2020-01-01", "max": "2020-01-02"}', NULL },
      { "date_difference", '{"date1": "2020-01-01", "date2": "2020-01-02T12:00:00Z", "unit": "day"}', 1.5 },
      { "date_difference", '{"date1": "2020-01-01T00:00:00Z", "date2": "2020-01-01T02:00:00+02:00"}', 0 },
      { "date_difference", '{"date1": "2020-01-31", "date2": "2020-03-31", "unit": "month"}', 2 },
      { "date_difference", '{"date1": "2020-01-01", "date2": "2020-01-16", "unit": "month"}', 15 / 31 },
      { "date_difference", '{"date1": "2021-01-01", "date2": "2020-01-01", "unit": "year"}', -1 },
      { "date_difference", '{"date1": "2020-01-01", "date2": "2020-01-01T00:00:01.5Z", "unit": "millisecond"}', 1500 },
    })
  end },
  { "constant passes any value through", function(t)
    run_cases(t, {
      { "constant", '{"x": {"a": [1, {"b": null}]}}', J('{"a": [1, {"b": null}]}') },
      { "constant", '{"x": null}', NULL }, { "constant", '{"x": ""}', "" },
    })
  end },
  { "the registry lists metadata for GET /processes", function(t)
    local list = registry.list()
    t.ok(#list >= 90, "at least 90 processes")
    local ids = {}
    for i, p in ipairs(list) do
      ids[i] = p.id
      t.eq(p.impl, nil, p.id .. " without impl")
      t.ok(type(p.description) == "string" and #p.description > 20, p.id .. " has a description")
      t.ok(type(p.summary) == "string", p.id .. " has a summary")
      t.ok(json.is_array(p.categories) and #p.categories > 0, p.id .. " has categories")
      t.ok(json.is_array(p.parameters), p.id .. " parameters is an array")
      t.ok(p.returns and p.returns.schema and p.returns.description, p.id .. " describes its return value")
      for _, param in ipairs(p.parameters) do
        t.ok(param.name and param.description and param.schema, p.id .. "." .. tostring(param.name) .. " is described")
        if param.default ~= nil then t.eq(param.optional, true, p.id .. "." .. param.name .. " with a default is optional") end
      end
    end
    local sorted = {}
    for i, id in ipairs(ids) do sorted[i] = id end
    table.sort(sorted)
    t.eq(ids, sorted, "sorted by id")
    -- It encodes as JSON: empty parameter lists are arrays, null defaults are null.
    local text = json.encode(list)
    t.match(text, '"id":"pi"')
    local pi
    for _, p in ipairs(list) do if p.id == "pi" then pi = p end end
    t.eq(json.encode(pi.parameters), "[]")
    t.match(text, '"default":null')
    -- Every listed process is runnable and named as in the registry.
    for _, p in ipairs(list) do t.ok(registry[p.id] and registry[p.id].impl, p.id .. " is in the registry") end
  end },
}
