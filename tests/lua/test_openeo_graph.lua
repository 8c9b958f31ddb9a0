-- Tests for api/openeo/graph.lua (validation and evaluation of openEO process
-- graphs) and api/openeo/eval.lua (the document runner behind `jobrt eval`).
package.path = "./?.lua;./?/init.lua;" .. package.path
local json = require("jobrt.json")
local graph = require("api.openeo.graph")
local registry = require("api.openeo.processes")
local eval = require("api.openeo.eval")

local NULL = json.null

local function pg(text) return json.decode(text) end

local function check_err(t, e, code, pattern)
  t.ok(e, "expected an error " .. code)
  if not e then return end
  t.eq(e.code, code, "error code")
  t.eq(e.status, 400, "status")
  if pattern then t.match(e.message, pattern) end
end

local function invalid(t, text, code, pattern, opts)
  local ok, e = graph.validate(type(text) == "string" and pg(text) or text, registry, opts)
  t.eq(ok, nil, "validation must fail")
  check_err(t, e, code, pattern)
end

local function run(text, opts, reg)
  return graph.evaluate(type(text) == "string" and pg(text) or text, reg or registry, opts)
end

-- A registry with two test processes: `tick` counts its calls (to observe
-- laziness and caching) and `boom` always fails.
local function test_registry()
  local calls = { n = 0 }
  local reg = setmetatable({
    tick = {
      id = "tick", parameters = { { name = "x", schema = {}, optional = true, default = 1 } },
      returns = { schema = { type = "number" } },
      impl = function(a) calls.n = calls.n + 1 return a.x end,
    },
    boom = {
      id = "boom", parameters = {}, returns = { schema = {} },
      impl = function() return nil, { code = "Boom", message = "boom was evaluated" } end,
    },
    buggy = {
      id = "buggy", parameters = {}, returns = { schema = {} },
      impl = function() local t = nil; return t.field end,
    },
  }, { __index = function(_, k) return registry[k] end })
  return reg, calls
end

return {
  -- Validation: one minimal graph per error code.
  { "missing graph", function(t)
    invalid(t, nil, "ProcessGraphMissing")
    invalid(t, "{}", "ProcessGraphMissing")
    invalid(t, "[1]", "ProcessGraphMissing")
  end },
  { "result node: none, two, non-boolean", function(t)
    invalid(t, '{"a": {"process_id": "pi", "arguments": {}}}', "ProcessGraphInvalid", "no result node")
    invalid(t, [[{"a": {"process_id": "pi", "arguments": {}, "result": true},
                  "b": {"process_id": "e", "arguments": {}, "result": true}}]], "ProcessGraphInvalid", "2 result nodes")
    invalid(t, '{"a": {"process_id": "pi", "arguments": {}, "result": "yes"}}', "ProcessGraphInvalid", "result must be")
  end },
  { "malformed nodes", function(t)
    invalid(t, '{"a": 5}', "ProcessGraphInvalid", "not an object")
    invalid(t, '{"a": {"arguments": {}, "result": true}}', "ProcessGraphInvalid", "no process_id")
    invalid(t, '{"a": {"process_id": "pi", "result": true}}', "ProcessGraphInvalid", "no arguments")
    invalid(t, '{"a": {"process_id": "pi", "arguments": [1], "result": true}}', "ProcessGraphInvalid", "no arguments")
  end },
  { "from_node targets must exist, also nested in arrays and objects", function(t)
    invalid(t, '{"a": {"process_id": "absolute", "arguments": {"x": {"from_node": "zz"}}, "result": true}}',
      "ProcessGraphInvalid", "'zz'")
    invalid(t, '{"a": {"process_id": "sum", "arguments": {"data": [1, [2, {"from_node": "nope"}]]}, "result": true}}',
      "ProcessGraphInvalid", "'nope'")
    invalid(t, '{"a": {"process_id": "constant", "arguments": {"x": {"k": {"l": [{"from_node": "gone"}]}}}, "result": true}}',
      "ProcessGraphInvalid", "'gone'")
    invalid(t, '{"a": {"process_id": "constant", "arguments": {"x": {"from_node": "a", "extra": 1}}, "result": true}}',
      "ProcessGraphInvalid", "exactly")
  end },
  { "node ids are scoped to their own graph", function(t)
    invalid(t, [[{"outer": {"process_id": "constant", "arguments": {"x": 1}},
      "a": {"process_id": "array_apply", "result": true, "arguments": {"data": [1], "process": {"process_graph": {
        "in": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_node": "outer"}}, "result": true}}}}}}]],
      "ProcessGraphInvalid", "'outer'")
  end },
  { "cycles are found", function(t)
    invalid(t, [[{"a": {"process_id": "absolute", "arguments": {"x": {"from_node": "b"}}},
                  "b": {"process_id": "absolute", "arguments": {"x": {"from_node": "a"}}},
                  "r": {"process_id": "absolute", "arguments": {"x": {"from_node": "a"}}, "result": true}}]],
      "ProcessGraphInvalid", "cycle")
    invalid(t, '{"a": {"process_id": "absolute", "arguments": {"x": {"from_node": "a"}}, "result": true}}',
      "ProcessGraphInvalid", "cycle")
  end },
  { "child graphs need exactly one result node too", function(t)
    invalid(t, [[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [1], "process": {"process_graph": {
        "x": {"process_id": "absolute", "arguments": {"x": 1}}}}}}}]], "ProcessGraphInvalid", "child process graph has no result")
    invalid(t, [[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [1], "process": {"process_graph": {}}}}}]],
      "ProcessGraphInvalid", "child process graph")
  end },
  { "unknown processes and namespaces", function(t)
    invalid(t, '{"a": {"process_id": "teleport", "arguments": {}, "result": true}}', "ProcessUnsupported", "'teleport'")
    invalid(t, '{"a": {"process_id": "pi", "namespace": "vito", "arguments": {}, "result": true}}', "ProcessUnsupported", "'vito'")
    invalid(t, [[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [1], "process": {"process_graph": {
        "x": {"process_id": "frobnicate", "arguments": {}, "result": true}}}}}}]], "ProcessUnsupported", "'frobnicate'")
    t.ok(graph.validate(pg('{"a": {"process_id": "pi", "namespace": null, "arguments": {}, "result": true}}'), registry))
    t.ok(graph.validate(pg('{"a": {"process_id": "pi", "namespace": "backend", "arguments": {}, "result": true}}'), registry))
  end },
  { "required and unsupported parameters", function(t)
    invalid(t, '{"a": {"process_id": "add", "arguments": {"x": 1}, "result": true}}', "ProcessParameterRequired", "'y'")
    invalid(t, '{"a": {"process_id": "add", "arguments": {"x": 1, "y": 2, "z": 3}, "result": true}}',
      "ProcessParameterUnsupported", "'z'")
    -- Optional parameters may be left out.
    t.ok(graph.validate(pg('{"a": {"process_id": "round", "arguments": {"x": 1.5}, "result": true}}'), registry))
  end },
  { "invalid argument types, as far as known before running", function(t)
    invalid(t, '{"a": {"process_id": "add", "arguments": {"x": "1", "y": 2}, "result": true}}',
      "ProcessParameterInvalid", "'x'.*number")
    invalid(t, '{"a": {"process_id": "sum", "arguments": {"data": [1, "two"]}, "result": true}}',
      "ProcessParameterInvalid", "element 1")
    invalid(t, '{"a": {"process_id": "date_shift", "arguments": {"date": "yesterday", "value": 1, "unit": "day"}, "result": true}}',
      "ProcessParameterInvalid", "'date'")
    invalid(t, '{"a": {"process_id": "date_shift", "arguments": {"date": "2020-01-01", "value": 1, "unit": "fortnight"}, "result": true}}',
      "ProcessParameterInvalid", "fortnight")
    invalid(t, '{"a": {"process_id": "round", "arguments": {"x": 1, "p": 0.5}, "result": true}}',
      "ProcessParameterInvalid", "integer")
    -- A child process where a value is expected, and a value where a child process is expected.
    invalid(t, [[{"a": {"process_id": "absolute", "result": true, "arguments": {"x": {"process_graph": {
        "p": {"process_id": "pi", "arguments": {}, "result": true}}}}}}]], "ProcessParameterInvalid", "child process")
    invalid(t, '{"a": {"process_id": "array_apply", "arguments": {"data": [1], "process": 5}, "result": true}}',
      "ProcessParameterInvalid", "'process'")
    -- The result of a node whose process can only return a string cannot be a number.
    invalid(t, [[{"t": {"process_id": "text_concat", "arguments": {"data": ["a"]}},
                  "a": {"process_id": "add", "arguments": {"x": {"from_node": "t"}, "y": 1}, "result": true}}]],
      "ProcessParameterInvalid", "'t'")
    -- ... also as an array element.
    invalid(t, [[{"t": {"process_id": "text_concat", "arguments": {"data": ["a"]}},
                  "a": {"process_id": "sum", "arguments": {"data": [1, {"from_node": "t"}]}, "result": true}}]],
      "ProcessParameterInvalid", "'t'")
    -- A node returning numbers fits an array of numbers.
    t.ok(graph.validate(pg([[{"p": {"process_id": "pi", "arguments": {}},
      "a": {"process_id": "sum", "arguments": {"data": [1, {"from_node": "p"}]}, "result": true}}]]), registry))
  end },
  { "parameter references must resolve", function(t)
    local text = '{"a": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "level"}}, "result": true}}'
    invalid(t, text, "ProcessParameterMissing", "'level'")
    t.ok(graph.validate(pg(text), registry, { arguments = { level = -3 } }))
    t.ok(graph.validate(pg(text), registry, { parameters = { { name = "level", default = 2 } } }))
    t.ok(graph.validate(pg(text), registry, { free_parameters = true }))
    -- Callback parameters are visible inside the child graph only.
    invalid(t, [[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [1], "process": {"process_graph": {
        "p": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "element"}}, "result": true}}}}}}]],
      "ProcessParameterMissing", "'element'")
    invalid(t, '{"a": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "x"}}, "result": true}}',
      "ProcessParameterMissing")
  end },
  { "absurd sizes are refused", function(t)
    local nodes = {}
    for i = 1, 20 do nodes["n" .. i] = { process_id = "pi", arguments = json.object({}), result = i == 1 } end
    invalid(t, nodes, "ProcessGraphComplexity", "more than 10 nodes", { max_nodes = 10 })
    t.ok(graph.validate(nodes, registry, { max_nodes = 20 }))
    -- Deeply nested child graphs.
    local inner = { r = { process_id = "pi", arguments = json.object({}), result = true } }
    for _ = 1, 5 do
      inner = { r = { process_id = "array_apply", result = true, arguments = json.object({
        data = json.array({ 1 }), process = { process_graph = inner } }) } }
    end
    invalid(t, inner, "ProcessGraphComplexity", "nested", { max_depth = 3 })
    t.ok(graph.validate(inner, registry))
  end },

  -- Evaluation.
  { "references inside nested arrays and objects are resolved", function(t)
    local v, e = run([[{
      "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
      "b": {"process_id": "multiply", "arguments": {"x": {"from_node": "a"}, "y": 10}},
      "s": {"process_id": "sum", "arguments": {"data": [{"from_node": "a"}, 5, {"from_node": "b"}]}},
      "c": {"process_id": "constant", "arguments": {"x": {"total": {"from_node": "s"}, "parts": [{"from_node": "a"}, {"k": {"from_node": "b"}}]}}, "result": true}
    }]])
    t.eq(e, nil)
    t.eq(v.total, 38)
    t.eq(v.parts[1], 3)
    t.eq(v.parts[2].k, 30)
    t.eq(json.encode(v.parts), '[3,{"k":30}]')
  end },
  { "the result node need not be last; unreached nodes do not run", function(t)
    local reg, calls = test_registry()
    local v, e = run([[{
      "r": {"process_id": "absolute", "arguments": {"x": -2}, "result": true},
      "after": {"process_id": "tick", "arguments": {"x": {"from_node": "r"}}},
      "loose": {"process_id": "boom", "arguments": {}}
    }]], nil, reg)
    t.eq(v, 2)
    t.eq(e, nil)
    t.eq(calls.n, 0)
    -- all_end_nodes runs every node nothing consumes, and their errors count.
    v, e = run('{"r": {"process_id": "pi", "arguments": {}, "result": true}, "t": {"process_id": "tick", "arguments": {}}}',
      { all_end_nodes = true }, reg)
    t.ok(v)
    t.eq(calls.n, 1)
    v, e = run('{"r": {"process_id": "pi", "arguments": {}, "result": true}, "b": {"process_id": "boom", "arguments": {}}}',
      { all_end_nodes = true }, reg)
    t.eq(v, nil)
    t.eq(e.code, "Boom")
  end },
  { "each node runs once per evaluation (cache)", function(t)
    local reg, calls = test_registry()
    local v = run([[{
      "t": {"process_id": "tick", "arguments": {"x": 3}},
      "a": {"process_id": "add", "arguments": {"x": {"from_node": "t"}, "y": {"from_node": "t"}}},
      "b": {"process_id": "multiply", "arguments": {"x": {"from_node": "t"}, "y": {"from_node": "a"}}, "result": true}
    }]], nil, reg)
    t.eq(v, 18)
    t.eq(calls.n, 1)
    -- A child graph runs afresh for every element.
    calls.n = 0
    v = run([[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [1, 2, 3], "process": {"process_graph": {
      "t": {"process_id": "tick", "arguments": {"x": {"from_parameter": "x"}}},
      "m": {"process_id": "multiply", "arguments": {"x": {"from_node": "t"}, "y": {"from_node": "t"}}, "result": true}}}}}}]],
      nil, reg)
    t.eq(v, json.array({ 1, 4, 9 }))
    t.eq(calls.n, 3)
  end },
  { "if evaluates only the chosen branch", function(t)
    local reg, calls = test_registry()
    local v, e = run([[{
      "c": {"process_id": "gt", "arguments": {"x": 3, "y": 1}},
      "yes": {"process_id": "tick", "arguments": {"x": "chosen"}},
      "no": {"process_id": "boom", "arguments": {}},
      "if": {"process_id": "if", "arguments": {"value": {"from_node": "c"}, "accept": {"from_node": "yes"}, "reject": {"from_node": "no"}}, "result": true}
    }]], nil, reg)
    t.eq(e, nil)
    t.eq(v, "chosen")
    t.eq(calls.n, 1)
    v, e = run([[{
      "bad": {"process_id": "array_element", "arguments": {"data": [], "index": 3}},
      "if": {"process_id": "if", "arguments": {"value": null, "accept": {"from_node": "bad"}}, "result": true}
    }]])
    t.eq(e, nil)
    t.eq(v, NULL)
  end },
  { "and/or short-circuit, xor stops at null", function(t)
    local reg = test_registry()
    local function logic(pid, x)
      return run(string.format([[{"b": {"process_id": "boom", "arguments": {}},
        "l": {"process_id": "%s", "arguments": {"x": %s, "y": {"from_node": "b"}}, "result": true}}]], pid, x), nil, reg)
    end
    t.eq(logic("and", "false"), false)
    t.eq(logic("or", "true"), true)
    t.eq(logic("xor", "null"), NULL)
    local v, e = logic("and", "true")
    t.eq(v, nil)
    t.eq(e.code, "Boom")
    v, e = logic("and", "null") -- null AND y still needs y
    t.eq(e.code, "Boom")
    v, e = logic("or", "false")
    t.eq(e.code, "Boom")
  end },
  { "nested callbacks see their own and enclosing parameters", function(t)
    -- For each row, add the row's index to each of its elements plus a
    -- top-level argument; the inner x shadows the outer x.
    local v, e = run([=[{"rows": {"process_id": "array_apply", "result": true, "arguments": {
      "data": [[1, 2], [10, 20]],
      "context": 1000,
      "process": {"process_graph": {
        "outer_ctx": {"process_id": "constant", "arguments": {"x": {"from_parameter": "context"}}},
        "inner": {"process_id": "array_apply", "result": true, "arguments": {
          "data": {"from_parameter": "x"},
          "context": {"from_parameter": "index"},
          "process": {"process_graph": {
            "a": {"process_id": "add", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "context"}}},
            "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": {"from_parameter": "offset"}}, "result": true}
          }}
        }}
      }}
    }}}]=], { arguments = { offset = 0.5 } })
    t.eq(e, nil)
    t.eq(v, json.array({ json.array({ 1.5, 2.5 }), json.array({ 11.5, 21.5 }) }))
  end },
  { "callbacks: count, array_filter with context", function(t)
    local v = run([[{"c": {"process_id": "count", "result": true, "arguments": {"data": [1, 5, null, 7, 2], "context": 4,
      "condition": {"process_graph": {"g": {"process_id": "gt", "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "context"}}, "result": true}}}}}}]])
    t.eq(v, 2)
    v = run([[{"f": {"process_id": "array_filter", "result": true, "arguments": {"data": ["a", "b", "c", "d"],
      "condition": {"process_graph": {"m": {"process_id": "mod", "arguments": {"x": {"from_parameter": "index"}, "y": 2}},
        "e": {"process_id": "eq", "arguments": {"x": {"from_node": "m"}, "y": 0}, "result": true}}}}}}]])
    t.eq(v, json.array({ "a", "c" }))
  end },
  { "graph parameters: values, then the outermost default", function(t)
    local text = '{"a": {"process_id": "multiply", "arguments": {"x": {"from_parameter": "f"}, "y": 2}, "result": true}}'
    t.eq(run(text, { arguments = { f = 4 } }), 8)
    t.eq(run(text, { parameters = { { name = "f", default = 5 } } }), 10)
    t.eq(run(text, { arguments = { f = 1 }, parameters = { { name = "f", default = 5 } } }), 2)
    -- Callback parameters with defaults (label) are null for plain arrays.
    local v = run([[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [7], "process": {"process_graph": {
      "l": {"process_id": "is_nodata", "arguments": {"x": {"from_parameter": "label"}}, "result": true}}}}}}]])
    t.eq(v, json.array({ true }))
  end },
  { "errors from processes name the code and the node", function(t)
    local v, e = run([[{"d": {"process_id": "constant", "arguments": {"x": [1, 2]}},
      "el": {"process_id": "array_element", "arguments": {"data": {"from_node": "d"}, "index": 9}, "result": true}}]])
    t.eq(v, nil)
    check_err(t, e, "ArrayElementNotAvailable", "index 9")
    t.eq(e.node, "el")
    t.eq(e.process, "array_element")
    -- An error inside a child graph propagates.
    v, e = run([[{"a": {"process_id": "array_apply", "result": true, "arguments": {"data": [ [1], [] ], "process": {"process_graph": {
      "el": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "x"}, "index": 0}, "result": true}}}}}}]])
    check_err(t, e, "ArrayElementNotAvailable")
    v, e = run('{"c": {"process_id": "clip", "arguments": {"x": 1, "min": 2, "max": 1}, "result": true}}')
    check_err(t, e, "MinMaxSwapped")
  end },
  { "computed arguments are type-checked when they are known", function(t)
    local v, e = run([[{"c": {"process_id": "constant", "arguments": {"x": "seven"}},
      "a": {"process_id": "add", "arguments": {"x": {"from_node": "c"}, "y": 1}, "result": true}}]])
    t.eq(v, nil)
    check_err(t, e, "ProcessParameterInvalid", "'x'")
    t.eq(e.node, "a")
  end },
  { "a failing implementation is an Internal error, not a crash", function(t)
    local reg = test_registry()
    local v, e = run('{"b": {"process_id": "buggy", "arguments": {}, "result": true}}', nil, reg)
    t.eq(v, nil)
    t.eq(e.code, "Internal")
    t.eq(e.status, 500)
  end },

  -- eval.lua
  { "eval.run takes the three document shapes", function(t)
    local g = '{"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": true}}'
    t.eq(eval.run(g), "3")
    t.eq(eval.run('{"process_graph": ' .. g .. '}'), "3")
    t.eq(eval.run('{"process": {"process_graph": ' .. g .. '}, "title": null, "plan": null, "budget": null}'), "3")
    local _, e = eval.run('{"process": {"id": "x"}}')
    t.eq(e.code, "ProcessGraphMissing")
    _, e = eval.run("{not json")
    t.eq(e.code, "ProcessGraphMissing")
    _, e = eval.run('{"process_graph": 5}')
    t.eq(e.code, "ProcessGraphMissing")
  end },
  { "eval.run writes NaN and infinities as null, or as text on request", function(t)
    local g = [[{"d": {"process_id": "divide", "arguments": {"x": 0, "y": 0}},
      "i": {"process_id": "divide", "arguments": {"x": -1, "y": 0}},
      "c": {"process_id": "array_create", "arguments": {"data": [{"from_node": "d"}, {"from_node": "i"}, 1.5]}, "result": true}}]]
    t.eq(eval.run(g), "[null,null,1.5]")
    t.eq(eval.run(g, { nonfinite = "string" }), '["NaN","-Infinity",1.5]')
    local v, e = eval.run(g, { nonfinite = "error" })
    t.eq(v, nil)
    t.eq(e.status, 500)
  end },
  { "eval.run_file reads a job document with parameter defaults", function(t)
    local function read(path)
      local f, msg = io.open(path, "rb")
      if not f then return nil, msg end
      return f:read("a"), f:close()
    end
    t.eq(eval.run_file("tests/fixtures/openeo/ndvi_mean.json", { read = read }), "60")
    local _, e = eval.run_file("tests/fixtures/openeo/does-not-exist.json", { read = read })
    t.eq(e.code, "ProcessGraphMissing")
    _, e = eval.run_file("tests/fixtures/openeo/ndvi_mean.json")
    t.eq(e.code, "Internal")
    t.eq(eval.run_file("tests/fixtures/openeo/x.json", { read = function() return '{"a": {"process_id": "pi", "arguments": {}, "result": true}}' end }),
      "3.141592653589793")
  end },
  { "labeled arrays encode as plain arrays", function(t)
    local util = require("api.openeo.processes.util")
    t.eq(eval.encode(util.labeled({ 1, 2 }, { "a", "b" })), "[1,2]")
    t.eq(eval.encode(json.array({})), "[]")
  end },
}
