-- jobrt.json: decoding (both the cjson path and the exact one), encoding,
-- null, array/object marks, and the errors of both directions.
local json = require("jobrt.json")
local cjson = require("cjson")

-- Forces the exact decoder: a text holding "[]" never goes through cjson.
local function exact(text)
  local v, err = json.decode("[[]," .. text .. "]")
  if v == nil then return nil, err end
  return v[2]
end

return {
  { "decode: values, integers, null, marks", function(t)
    local v = json.decode('{"a":[1,2.5,"x\\u00e9\\ud83d\\ude00",null,true,false],"b":{},"c":-0,"d":1.0,"e":1e2}')
    t.eq(v, { a = { 1, 2.5, "xé😀", json.null, true, false }, b = {}, c = 0, d = 1, e = 100 })
    t.eq(math.type(v.a[1]), "integer")
    t.eq(math.type(v.d), "integer")
    t.eq(math.type(v.a[2]), "float")
    t.ok(json.is_array(v.a))
    t.ok(not json.is_array(v.b))
    t.eq(json.decode("null"), json.null)
    t.eq(json.decode(' "s" '), "s")
    t.eq(json.decode("[]"), {})
    t.ok(json.is_array(json.decode("[]")))
    t.ok(json.is_array(json.decode('{"x":[ ]}').x))
    t.eq(json.encode(json.decode('{"x":[],"y":{}}').x), "[]")
    t.eq(json.encode(json.decode('{"x":[1],"y":{}}').y), "{}")
  end },

  { "decode: big numbers stay exact", function(t)
    t.eq(json.decode("12345678901234567"), 12345678901234567)
    t.eq(math.type(json.decode("12345678901234567")), "integer")
    t.eq(json.decode("[9223372036854775807,-9223372036854775808]"),
      { math.maxinteger, math.mininteger })
    t.eq(json.decode("99999999999999999999"), 1e20)
    t.eq(math.type(json.decode("99999999999999999999")), "float")
    t.eq(json.decode("1e400"), math.huge)
    t.eq(json.decode('{"ns":1700000000123456789}').ns, 1700000000123456789)
    t.eq(json.encode(json.decode('{"ns":1700000000123456789}')), '{"ns":1700000000123456789}')
  end },

  { "decode: both paths agree", function(t)
    local texts = {
      '{"a":[1,2.5,"x\\u00e9",null,true,{"b":-3e-2}],"c":"\\"\\\\\\/\\b\\f\\n\\r\\t"}',
      '"\\ud83d\\ude00"', "0", "-0.5", "1E+2", '""', '"a\\u0000b"', "[[[1]]]", '{"":1}', "true",
    }
    for _, text in ipairs(texts) do
      local a, b = json.decode(text), exact(text)
      t.eq(a, b, text)
      t.eq(json.encode(a), json.encode(b), text)
    end
  end },

  { "decode: errors say where, never raise", function(t)
    local cases = {
      { "[1,2", "invalid JSON at byte 5: expected ',' or ']'" },
      { '{"a":1,}', "invalid JSON at byte 8: expected a string key" },
      { "", "invalid JSON at byte 1: expected a value but found the end of the text" },
      { "[1] x", "invalid JSON at byte 5: expected the end of the text" },
      { "NaN", "invalid JSON at byte 1: expected a value" },
      { "0x10", "invalid JSON at byte 2: expected the end of the text" },
      { "01", "invalid JSON at byte 2: expected the end of the text" },
      { '"\\ud800"', "invalid JSON at byte 2: invalid unicode escape code" },
      { '{"a" 1}', "invalid JSON at byte 6: expected ':'" },
      { '"a\tb"', "invalid JSON at byte 3: control character in string (escape it)" },
      { string.rep("[", 1001) .. "1" .. string.rep("]", 1001), "invalid JSON at byte 1001: too many nested arrays or objects" },
    }
    for _, case in ipairs(cases) do
      t.eq({ json.decode(case[1]) }, { nil, case[2] }, case[1])
    end
    -- The same mistakes through the exact decoder ("[[]," is 4 bytes more).
    local exact_cases = {
      { "[1,2", "invalid JSON at byte 10: expected ',' or ']'" },
      { '{"a":1,}', "invalid JSON at byte 12: expected a string key" },
      { "", "invalid JSON at byte 5: expected a value" },
      { "tru", "invalid JSON at byte 5: invalid token" },
      { "01", "invalid JSON at byte 6: expected ',' or ']'" },
      { "-", "invalid JSON at byte 5: invalid number" },
      { "1.", "invalid JSON at byte 5: invalid number" },
      { "1e", "invalid JSON at byte 5: invalid number" },
      { '"\\ud800"', "invalid JSON at byte 6: invalid unicode escape code" },
      { '"\\udc00"', "invalid JSON at byte 6: invalid unicode escape code" },
      { '"\\u12"', "invalid JSON at byte 6: invalid unicode escape code" },
      { '"\\x"', "invalid JSON at byte 6: invalid escape code" },
      { '"abc', "invalid JSON at byte 5: unexpected end of string" },
      { '{"a" 1}', "invalid JSON at byte 10: expected ':'" },
      { '{"a":1 "b":2}', "invalid JSON at byte 12: expected ',' or '}'" },
    }
    for _, case in ipairs(exact_cases) do
      t.eq({ exact(case[1]) }, { nil, case[2] }, case[1])
    end
    t.eq({ json.decode("[] x") }, { nil, "invalid JSON at byte 4: expected the end of the text" })
    t.eq({ json.decode(string.rep("[", 1001) .. string.rep("]", 1001)) },
      { nil, "invalid JSON at byte 1001: too many nested arrays or objects" })
    t.ok(json.decode(string.rep("[", 1000) .. string.rep("]", 1000)))
    t.eq({ json.decode(nil) }, { nil, "invalid JSON: expected a string, got nil" })
    t.eq({ json.decode({}) }, { nil, "invalid JSON: expected a string, got table" })
  end },

  { "encode: scalars, strings, numbers", function(t)
    t.eq(json.encode(nil), "null")
    t.eq(json.encode(json.null), "null")
    t.eq(json.encode(true), "true")
    t.eq(json.encode("a/b\"c\\d\n\0\127é"), '"a/b\\"c\\\\d\\n\\u0000\\u007fé"')
    t.eq(json.encode("\\/"), '"\\\\/"')
    t.eq(json.encode(5), "5")
    t.eq(json.encode(5.0), "5")
    t.eq(json.encode(0.1), "0.1")
    t.eq(json.encode(1 / 3), "0.3333333333333333")
    t.eq(json.encode(0.1 + 0.2), "0.30000000000000004")
    t.eq(json.encode(123456789012345678), "123456789012345678")
    t.eq(json.encode(math.mininteger), "-9223372036854775808")
    t.eq(json.encode(1e300), "1e+300")
    t.eq(json.decode(json.encode(2 ^ 60 + 0.0)), 2 ^ 60)
  end },

  { "encode: tables, marks, holes", function(t)
    t.eq(json.encode({ 1, 2, 3 }), "[1,2,3]")
    t.eq(json.encode({ 1, nil, 3 }), "[1,null,3]")
    t.eq(json.encode({}), "{}")
    t.eq(json.encode(json.array()), "[]")
    t.eq(json.encode(json.array({})), "[]")
    t.eq(json.encode(json.object()), "{}")
    t.eq(json.encode(json.object({ 1, 2 })), '{"1":1,"2":2}')
    t.eq(json.encode({ a = json.array({}) }), '{"a":[]}')
    t.eq(json.encode({ [1] = "a", [2.5] = "b" }), '{"1":"a","2.5":"b"}')
    t.eq(json.encode({ list = { { x = "/" } } }), '{"list":[{"x":"/"}]}')
    local t1 = json.array({ 1 })
    t1[1] = nil
    t.eq(json.encode(t1), "[]")
    local round = json.decode('{"a":[],"b":{},"c":[{}],"d":[[]]}')
    t.eq(json.decode(json.encode(round)), round)
    t.ok(json.is_array(json.decode(json.encode(round)).c))
  end },

  { "encode: programming errors raise", function(t)
    t.err(function() json.encode(print) end, "json.encode: cannot encode a function")
    t.err(function() json.encode({ a = coroutine.create(print) }) end, "cannot encode a thread")
    t.err(function() json.encode(0 / 0) end, "NaN and infinity are not JSON")
    t.err(function() json.encode({ math.huge }) end, "NaN and infinity are not JSON")
    t.err(function() json.encode({ [true] = 1 }) end, "cannot encode a boolean key")
    t.err(function() json.encode({ [1] = 1, [100] = 2 }) end, "excessively sparse array %(2 values up to index 100%)")
    local loop = {}
    loop.self = loop
    t.err(function() json.encode(loop) end, "nested deeper than 1000 %(a cycle%?%)")
    t.err(function() json.encode(io.stdout) end, "cannot encode a userdata")
  end },

  { "settings do not leak into the shared cjson", function(t)
    t.eq(json.null, cjson.null)
    -- cjson's defaults stay: it still escapes "/" and accepts NaN.
    t.eq(cjson.encode("/"), '"\\/"')
    local v = cjson.decode("NaN")
    t.ok(v ~= v)
  end },
}
