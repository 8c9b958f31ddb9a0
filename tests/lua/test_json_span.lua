-- jobrt.json_span: exact byte spans of top-level members on tricky bodies,
-- and a reason for every body it refuses.
local js = require("jobrt.json_span")

local function text(body, member, opts)
  local a, b, code = js.span(body, member, opts)
  if type(a) == "number" then return body:sub(a, b) end
  return nil, b, code
end

return {
  { "spans of values of every type", function(t)
    local body = '{"s":"x","n":-12.5e+3,"t":true,"f":false,"z":null,"a":[1,[2,{}]],"o":{"k":{"l":[]}},"e":""}'
    t.eq(text(body, "s"), '"x"')
    t.eq(text(body, "n"), "-12.5e+3")
    t.eq(text(body, "t"), "true")
    t.eq(text(body, "f"), "false")
    t.eq(text(body, "z"), "null")
    t.eq(text(body, "a"), "[1,[2,{}]]")
    t.eq(text(body, "o"), '{"k":{"l":[]}}')
    t.eq(text(body, "e"), '""')
    t.eq({ js.span(body, "s") }, { 6, 8 }, "1-based inclusive offsets")
  end },

  { "the exact text is kept: whitespace, key order, escapes", function(t)
    local payload = '{ "b" : 1,\n\t"a":"q\\"uote \\\\ \\/ \\u00e9 \\ud83d\\ude00 }{][",  "c":[ ] }'
    local body = ' \r\n{ "signature" : "c2ln" ,\n  "payload"  :  ' .. payload .. '  ,"x":0}\n '
    t.eq(text(body, "payload"), payload)
    t.eq(text(body, "signature"), '"c2ln"')
  end },

  { "member names are compared after escapes; fold_case is ASCII case-insensitive", function(t)
    t.eq(text('{"pay\\u006coad":1}', "payload"), "1")
    t.eq(text('{"a\\"b":2}', 'a"b'), "2")
    t.eq(text('{"\\ud83d\\ude00":3}', "😀"), "3")
    t.eq(select(3, text('{"Payload":1}', "payload")), "MISSING")
    t.eq(text('{"Payload":1}', "payload", { fold_case = true }), "1")
    t.eq(text('{"PAYLOAD":{"payload":2}}', "payload", { fold_case = true }), '{"payload":2}')
  end },

  { "duplicate top-level names are refused, after the whole body is validated", function(t)
    local _, msg, code = text('{"payload":{"a":1},"signature":"x","payload":{"a":2}}', "payload")
    t.eq(code, "DUPLICATE")
    t.match(msg, 'duplicate member "payload" at byte 36')
    t.match(msg, "decoders disagree")
    t.eq(select(3, text('{"signature":1,"payload":2,"signature":3}', "payload")), "DUPLICATE",
      "any repeated top-level name")
    t.eq(select(3, text('{"pay\\u006coad":1,"payload":2}', "payload")), "DUPLICATE", "spelled differently")
    t.eq(select(3, text('{"payload":1,"Payload":2}', "payload", { fold_case = true })), "DUPLICATE")
    t.eq(text('{"payload":1,"Payload":2}', "payload"), "1", "different names without fold_case")
    t.eq(text('{"payload":{"a":1,"a":2}}', "payload"), '{"a":1,"a":2}', "nested repeats are the signer's")
    t.eq(select(3, text('{"payload":1,"payload":2', "payload")), "MALFORMED", "malformed wins")
  end },

  { "malformed bodies: a reason with a byte offset", function(t)
    local cases = {
      { "", "empty body" },
      { "   ", "empty body" },
      { "[1]", "at byte 1: the document must be an object" },
      { '"payload"', "must be an object" },
      { "{", "at byte 2: expected a member name" },
      { '{"payload"}', "at byte 11: expected ':'" },
      { '{"payload":}', "at byte 12: bad value" },
      { '{"payload":1,}', "at byte 14: expected a member name" },
      { '{"payload":1 "x":2}', "at byte 14: expected ','" },
      { '{"payload":[1,]}', "at byte 15: bad value" },
      { '{"payload":[1 2]}', "at byte 15: bad value" },
      { '{"payload":{"a" 1}}', "at byte 17: bad value" },
      { '{"payload":01}', "at byte 13: expected ','" },
      { '{"payload":1.}', "at byte 13" },
      { '{"payload":.5}', "at byte 12: bad value" },
      { '{"payload":+1}', "at byte 12: bad value" },
      { '{"payload":1e}', "at byte 13" },
      { '{"payload":0x10}', "at byte 13" },
      { '{"payload":NaN}', "at byte 12: bad value" },
      { '{"payload":tru}', "at byte 12: bad value" },
      { '{"payload":"a\\x"}', "at byte 14: bad value" },
      { '{"payload":"a\\u12G4"}', "at byte 14: bad value" },
      { '{"payload":"tab\there"}', "at byte 16: bad value" },
      { '{"payload":"\255"}', "at byte 13: bad value" },
      { '{"payload":"\192\175"}', "at byte 13: bad value" },          -- overlong "/"
      { '{"payload":"\237\160\128"}', "at byte 13: bad value" },      -- UTF-8 surrogate
      { '{"payload":"\\ud800"}', "at byte 13: bad value" },           -- lone high surrogate
      { '{"payload":"\\udc00x"}', "at byte 13: bad value" },          -- lone low surrogate
      { '{"payload":"open}', "at byte 18: bad value" },
      { "{'payload':1}", "at byte 2: expected a member name" },
      { '{payload:1}', "at byte 2: expected a member name" },
      { '{"payload":1}}', "at byte 14: data after the document" },
      { '{"payload":1}{}', "data after the document" },
      { '{"payload":1}\0', "data after the document" },
      { '\239\187\191{"payload":1}', "must be an object" },             -- BOM
      { '{"payload":/*c*/1}', "at byte 12: bad value" },
      { '{"payload":' .. ("["):rep(1000) .. ("]"):rep(1000) .. "}", "nested too deeply" },
    }
    for _, c in ipairs(cases) do
      local v, msg, code = text(c[1], "payload")
      t.eq(v, nil, c[1])
      t.eq(code, "MALFORMED", c[1])
      t.match(msg, c[2], c[1])
    end
  end },

  { "missing member; valid bodies where the name only appears nested or as a value", function(t)
    t.eq(select(3, text('{}', "payload")), "MISSING")
    t.eq(select(3, text('{"a":{"payload":1},"b":"payload"}', "payload")), "MISSING")
    t.match(select(2, text('{ }', "payload")), 'no member "payload"')
  end },

  { "deep but reasonable nesting is fine", function(t)
    local v = ('{"a":['):rep(150) .. ("]}"):rep(150)
    t.eq(text('{"payload":' .. v .. '}', "payload"), v)
  end },

  { "valid(): any single value", function(t)
    t.eq(js.valid(" 1 "), true)
    t.eq(js.valid('"x"'), true)
    t.eq(js.valid("[]"), true)
    t.eq(js.valid(""), nil)
    t.match(select(2, js.valid("[1,]")), "at byte 4")
    t.match(select(2, js.valid("1 2")), "data after the value at byte 3")
  end },

  { "wrong argument types raise", function(t)
    t.err(function() js.span(nil, "payload") end, "body must be a string")
    t.err(function() js.span("{}", 1) end, "member must be a string")
  end },
}
