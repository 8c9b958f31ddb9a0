-- Byte spans of top-level JSON members, for signatures made over the exact
-- text of a member (Bacalhau signs the raw bytes of "payload"): span(body,
-- "payload") -> start, stop, so that body:sub(start, stop) is the value as
-- sent, never a re-serialisation. The whole body is validated (RFC 8259,
-- strict UTF-8), and a repeated top-level key is refused: decoders disagree
-- on which copy wins, so a signature checked over one copy could be used to
-- smuggle the other.
local lpeg = require("lpeg")

local P, R, S, V, C, Cs, Cp, Cmt = lpeg.P, lpeg.R, lpeg.S, lpeg.V, lpeg.C, lpeg.Cs, lpeg.Cp, lpeg.Cmt

local M = {}

-- The grammar, built twice: plain for speed, and with every token wrapped
-- by `mark` to find how far a malformed text got (only run after a failure).
local function build(mark)
  local ws = mark(S(" \t\n\r") ^ 0)
  local hex = R("09", "af", "AF")
  local cont = R("\128\191")
  local utf8char = R("\194\223") * cont
    + P("\224") * R("\160\191") * cont
    + (R("\225\236") + R("\238\239")) * cont * cont
    + P("\237") * R("\128\159") * cont -- no UTF-16 surrogates
    + P("\240") * R("\144\191") * cont * cont
    + R("\241\243") * cont * cont * cont
    + P("\244") * R("\128\143") * cont * cont
  local plain = R("\32\127") - S('"\\')
  -- \u escapes of UTF-16 surrogates only as a high-low pair (RFC 7493 §2.1):
  -- a lone one has no character, and decoders differ on what they make of it.
  local u_high = P("\\u") * S("dD") * S("89abAB") * hex * hex
  local u_low = P("\\u") * S("dD") * S("cdefCDEF") * hex * hex
  local escape = u_high * u_low + (P("\\") * (S('"\\/bfnrt') + P("u") * hex * hex * hex * hex) - u_high - u_low)
  -- Runs of plain bytes match as one span: per-byte alternation made the
  -- long base64 strings of a signed request the bulk of the work.
  local str = mark(P('"')) * mark(plain ^ 1 + escape + utf8char) ^ 0 * P('"')
  local digits = R("09") ^ 1
  local number = P("-") ^ -1 * (P("0") + R("19") * R("09") ^ 0)
    * (P(".") * digits) ^ -1 * (S("eE") * S("+-") ^ -1 * digits) ^ -1
  local function tok(p) return mark(p) end
  local value = P({
    "value",
    value = V("object") + V("array") + tok(str) + tok(number)
      + tok(P("true")) + tok(P("false")) + tok(P("null")),
    member = tok(str) * ws * tok(P(":")) * ws * V("value"),
    object = tok(P("{")) * ws * (V("member") * (ws * tok(P(",")) * ws * V("member")) ^ 0 * ws) ^ -1
      * tok(P("}")),
    array = tok(P("[")) * ws * (V("value") * (ws * tok(P(",")) * ws * V("value")) ^ 0 * ws) ^ -1
      * tok(P("]")),
  })
  return { ws = ws * Cp(), str = str * Cp(), value = value * Cp() }
end

local fast = build(function(p) return p end)

local far = 0
local slow = build(function(p)
  return Cmt(p, function(_, i)
    if i > far then far = i end
    return true
  end)
end)

-- Where a value starting at pos stops being JSON (1-based byte offset).
local function fault_at(body, pos)
  far = pos
  pcall(lpeg.match, slow.value, body, pos)
  return far
end

local ESC = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
local hex = R("09", "af", "AF")
local pair = P("\\u") * C(S("dD") * S("89abAB") * hex * hex) * P("\\u") * C(S("dD") * S("cdefCDEF") * hex * hex)
  / function(h, l)
    return utf8.char(0x10000 + ((tonumber(h, 16) - 0xD800) << 10) + (tonumber(l, 16) - 0xDC00))
  end
local unescape = Cs((pair
  + P("\\u") * C(hex * hex * hex * hex) / function(h) return utf8.char(tonumber(h, 16)) end
  + P("\\") * C(1) / ESC
  + 1) ^ 0)

-- The decoded text of a member name whose quoted form is body[a..b].
local function key_text(body, a, b)
  local raw = body:sub(a + 1, b - 1)
  if not raw:find("\\", 1, true) then return raw end
  return unescape:match(raw)
end

local function malformed(fmt, ...)
  return nil, "malformed JSON: " .. string.format(fmt, ...), "MALFORMED"
end

local function match_value(body, pos)
  local ok, stop = pcall(lpeg.match, fast.value, body, pos)
  if not ok then return nil, "nested too deeply" end
  return stop
end

--- span(body, member[, opts]) -> start, stop | nil, reason, code
-- start and stop are 1-based inclusive byte offsets of the value of the
-- top-level member named `member` (compared after resolving escapes).
-- opts.fold_case: match names ASCII case-insensitively, as Go's decoder
-- does; then names that differ only in case count as duplicates.
-- code is "MALFORMED", "DUPLICATE" (a top-level name occurs twice) or
-- "MISSING" (the body is valid, the member absent).
function M.span(body, member, opts)
  if type(body) ~= "string" then error("json_span.span: body must be a string", 2) end
  if type(member) ~= "string" then error("json_span.span: member must be a string", 2) end
  local fold = opts and opts.fold_case
  local want = fold and member:lower() or member
  local n = #body
  local pos = fast.ws:match(body, 1)
  if body:byte(pos) ~= 123 then -- "{"
    if pos > n then return malformed("empty body") end
    return malformed("at byte %d: the document must be an object", pos)
  end
  pos = fast.ws:match(body, pos + 1)
  local seen, start, stop, duplicate = {}, nil, nil, nil
  if body:byte(pos) ~= 125 then -- "}"
    while true do
      local kend = fast.str:match(body, pos)
      if not kend then
        if body:byte(pos) == 34 then
          return malformed("at byte %d: bad member name", fault_at(body, pos))
        end
        return malformed("at byte %d: expected a member name", pos)
      end
      local name = key_text(body, pos, kend - 1)
      local k = fold and name:lower() or name
      -- Reported once the whole body is known to be JSON.
      if seen[k] and not duplicate then duplicate = { name, pos } end
      seen[k] = true
      pos = fast.ws:match(body, kend)
      if body:byte(pos) ~= 58 then return malformed("at byte %d: expected ':' after member name", pos) end
      pos = fast.ws:match(body, pos + 1)
      local vend, why = match_value(body, pos)
      if not vend then
        if why then return malformed("at byte %d: value of %q is %s", pos, name, why) end
        return malformed("at byte %d: bad value of member %q", fault_at(body, pos), name)
      end
      if k == want then start, stop = pos, vend - 1 end
      pos = fast.ws:match(body, vend)
      local c = body:byte(pos)
      if c == 125 then break end
      if c ~= 44 then return malformed("at byte %d: expected ',' or '}' after the value of %q", pos, name) end
      pos = fast.ws:match(body, pos + 1)
    end
  end
  pos = fast.ws:match(body, pos + 1)
  if pos <= n then return malformed("at byte %d: data after the document", pos) end
  if duplicate then
    return nil, string.format("duplicate member %q at byte %d: a repeated top-level name is "
      .. "refused, because decoders disagree on which copy counts", duplicate[1], duplicate[2]), "DUPLICATE"
  end
  if not start then return nil, string.format("no member %q", member), "MISSING" end
  return start, stop
end

--- valid(body) -> true | nil, reason: whether body is exactly one JSON
-- value (any type), with optional surrounding whitespace.
function M.valid(body)
  if type(body) ~= "string" then error("json_span.valid: body must be a string", 2) end
  local pos = fast.ws:match(body, 1)
  local vend, why = match_value(body, pos)
  if not vend then
    if why then return nil, "malformed JSON: " .. why end
    return nil, string.format("malformed JSON at byte %d", fault_at(body, pos))
  end
  pos = fast.ws:match(body, vend)
  if pos <= #body then return nil, string.format("malformed JSON: data after the value at byte %d", pos) end
  return true
end

return M
