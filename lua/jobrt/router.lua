-- Path templates ("/jobs/{job_id}/results") compiled to lpeg patterns, the
-- route table every surface fills, query strings, and mounting a surface's
-- templates under its prefix.
--
-- Precedence, when several templates match a path: segments are compared
-- left to right, and at the first segment where they differ a literal beats
-- {name}, which beats {name*}. So "/jobs/latest" beats "/jobs/{id}", and
-- "/jobs/{id}/logs" beats "/jobs/{id}/{file*}". The first template in that
-- order that has a route for the method wins; a path that some template
-- matches, but none for the method, is "method_not_allowed".
local lpeg = require("lpeg")

local P, R, S, C, Cs, Ct, Cc = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cs, lpeg.Ct, lpeg.Cc

local M = {}

---------------------------------------------------------------------------
-- Percent-decoding

local hex = R("09", "af", "AF")
local escape = P("%") * C(hex * hex) / function(h) return string.char(tonumber(h, 16)) end
local path_text = Cs((escape + (1 - P("%"))) ^ 0) * -1

local function bad_escape(s)
  local at = 1
  while true do
    at = s:find("%", at, true)
    if not at then return nil end
    if not s:find("^%x%x", at + 1) then return at, s:sub(at, at + 2) end
    at = at + 3
  end
end

--- router.unescape(s) -> s with %XX decoded | nil, reason ("+" stays "+").
function M.unescape(s)
  if not s:find("%", 1, true) then return s end -- most are plain
  local out = path_text:match(s)
  if out then return out end
  local at, bad = bad_escape(s)
  return nil, string.format('malformed percent-escape "%s" at byte %d', bad or "%", at or 1)
end

---------------------------------------------------------------------------
-- Query strings

local plus = P("+") / " "
local query_key = Cs((escape + plus + (1 - S("%&="))) ^ 0)
local query_value = Cs((escape + plus + (1 - S("%&"))) ^ 0)
local query_pair = Ct(query_key * (P("=") * query_value + Cc(nil)))
local query = Ct(query_pair * (P("&") * query_pair) ^ 0) * -1

-- The first value of a key in q, every value in multi; an empty key is dropped.
local function add_pair(q, multi, k, v)
  if k == "" then return end
  if q[k] == nil then
    q[k] = v
    multi[k] = { v }
  else
    local list = multi[k]
    list[#list + 1] = v
  end
end

--- router.parse_query(qs) -> q, multi | nil, reason. q[key] is the first
-- value given for key, multi[key] the list of all of them. "+" is a space;
-- "a" without "=" has the value ""; empty keys are skipped.
function M.parse_query(qs)
  local q, multi = {}, {}
  if qs == nil or qs == "" then return q, multi end
  if not qs:find("[%%+]") then
    -- Nothing to decode (most queries): split without the grammar.
    for pair in qs:gmatch("[^&]+") do
      add_pair(q, multi, pair:match("^([^=]*)=?(.*)$"))
    end
    return q, multi
  end
  local pairs_ = query:match(qs)
  if not pairs_ then
    local at, bad = bad_escape(qs)
    return nil, string.format('malformed percent-escape "%s" at byte %d in the query', bad or "%", at or 1)
  end
  for _, pair in ipairs(pairs_) do add_pair(q, multi, pair[1], pair[2] or "") end
  return q, multi
end

--- router.query(qs) -> q | nil, reason: parse_query's q alone, decoded in
-- C where the runtime has it (jobrt.http's query: every request has one).
local ok_http, http = pcall(require, "jobrt.http")
local c_query = ok_http and type(http) == "table" and http.query or nil
function M.query(qs)
  if c_query then return c_query(qs) end
  local q, err = M.parse_query(qs)
  if not q then return nil, err end
  return q
end

--- router.integer(value[, {min =, max =}]) -> n | nil (value nil or "")
-- | nil, reason. The one parser of integer query parameters: decimal
-- digits only (no sign unless min allows negatives, no "0x", no "1e3"),
-- min defaulting to 0, max to the largest integer.
function M.integer(value, opts)
  if value == nil or value == "" then return nil end
  local min = opts and opts.min or 0
  local max = opts and opts.max or math.maxinteger
  local range = max == math.maxinteger and string.format("at least %d", min)
    or string.format("from %d to %d", min, max)
  local digits = type(value) == "string" and value:match(min < 0 and "^%-?%d+$" or "^%d+$")
  local n = digits and math.tointeger(tonumber(value))
  if not n then return nil, string.format("must be an integer %s, got %q", range, tostring(value)) end
  if n < min or n > max then return nil, string.format("must be an integer %s, got %d", range, n) end
  return n
end

---------------------------------------------------------------------------
-- Templates

local name = C((R("az", "AZ", "09") + S("_-")) ^ 1)
local template_segment = P("{") * name * P("*}") / function(n) return { kind = "rest", name = n } end
  + P("{") * name * P("}") / function(n) return { kind = "param", name = n } end
  + C((1 - S("/{}")) ^ 1) / function(s) return { kind = "literal", text = s } end
local template_grammar = Ct((P("/") * template_segment) ^ 1) * -1 + P("/") * -1 * Ct(Cc(nil))

local RANK = { literal = 1, param = 2, rest = 3 }
local one_segment = (1 - P("/")) ^ 1
local the_rest = P(1) ^ 1

-- template -> { segments, pattern (captures the values), key (for
-- equality up to parameter names), names, ranks }; raises if malformed.
local function compile(template)
  if type(template) ~= "string" then error("router: template must be a string", 3) end
  local segments = template_grammar:match(template)
  if not segments then error(string.format('router: malformed template "%s"', template), 3) end
  local pattern, key, names, ranks, seen = P(true), {}, {}, {}, {}
  for i, seg in ipairs(segments) do
    if seg.kind == "rest" and i ~= #segments then
      error(string.format('router: {%s*} must be the last segment of "%s"', seg.name, template), 3)
    end
    if seg.name then
      if seen[seg.name] then
        error(string.format('router: {%s} appears twice in "%s"', seg.name, template), 3)
      end
      seen[seg.name] = true
      names[#names + 1] = seg.name
    end
    ranks[i] = RANK[seg.kind]
    if seg.kind == "literal" then
      pattern = pattern * P("/" .. seg.text)
      key[i] = seg.text
    elseif seg.kind == "param" then
      pattern = pattern * P("/") * C(one_segment)
      key[i] = "{}"
    else
      pattern = pattern * P("/") * C(the_rest)
      key[i] = "{*}"
    end
  end
  if #segments == 0 then pattern = P("/") end
  return {
    pattern = Ct(pattern * -1),
    key = "/" .. table.concat(key, "/"),
    names = names,
    ranks = ranks,
    literal = #names == 0,
    -- The first two segments when literal (nil otherwise): the index
    -- (Router:candidates) tries a path only against templates that can
    -- match it.
    first = segments[1] and segments[1].kind == "literal" and segments[1].text or nil,
    second = segments[2] and segments[2].kind == "literal" and segments[2].text or nil,
  }
end

local function before(a, b)
  local ra, rb = a.ranks, b.ranks
  for i = 1, math.min(#ra, #rb) do
    if ra[i] ~= rb[i] then return ra[i] < rb[i] end
  end
  if #ra ~= #rb then return #ra < #rb end
  return a.key < b.key
end

---------------------------------------------------------------------------
-- Routers

local Router = {}
Router.__index = Router

--- router.new() -> an empty router
function M.new()
  return setmetatable({ groups = {}, by_key = {}, literal = {}, sorted = true }, Router)
end

-- Sorts the groups into match precedence order and indexes them by their
-- first two segments: by_first[a].second[b] (both literal), then
-- by_first[a].other (a literal first segment only), then wild (the first
-- is a parameter, or none). For a path /a/b/... these three lists, in this
-- order, are exactly the groups that can match it, already in precedence
-- order: a literal segment ranks before a parameter, and a template of one
-- segment matches no longer path.
function Router:sort()
  table.sort(self.groups, before)
  local by_first, wild = {}, {}
  for _, g in ipairs(self.groups) do
    if g.first then
      local f = by_first[g.first]
      if not f then
        f = { second = {}, other = {}, merged = {} }
        by_first[g.first] = f
      end
      if g.second then
        local list = f.second[g.second]
        if not list then
          list = {}
          f.second[g.second] = list
        end
        list[#list + 1] = g
      else
        f.other[#f.other + 1] = g
      end
    else
      wild[#wild + 1] = g
    end
  end
  self.by_first, self.wild = by_first, wild
  self.sorted = true
end

--- r:add(method, template, handler, meta) -> route {method, template,
-- handler, meta}. Raises on a malformed template or a route added twice
-- (same method, same template up to parameter names): programming errors.
function Router:add(method, template, handler, meta)
  if type(method) ~= "string" or not method:find("^%u+$") then
    error("router: method must be an upper-case HTTP method, got " .. tostring(method), 2)
  end
  local compiled = compile(template)
  local group = self.by_key[compiled.key]
  if not group then
    group = compiled
    group.routes = {}
    self.by_key[group.key] = group
    self.groups[#self.groups + 1] = group
    if group.literal then self.literal[template] = group end
    self.sorted = false
  end
  if group.routes[method] then
    error(string.format('router: %s %s is already routed (as %s)', method, template,
      group.routes[method].template), 2)
  end
  local route = { method = method, template = template, handler = handler, meta = meta,
                  names = compiled.names }
  group.routes[method] = route
  return route
end

local function pick(group, method)
  return group.routes[method] or (method == "HEAD" and group.routes.GET) or nil
end

local function allow_list(groups)
  local set = { OPTIONS = true }
  for _, g in ipairs(groups) do
    for m in pairs(g.routes) do set[m] = true end
    if g.routes.GET then set.HEAD = true end
  end
  local list = {}
  for m in pairs(set) do list[#list + 1] = m end
  table.sort(list)
  return list
end

-- The groups that may match path, in precedence order (see Router:sort):
-- one list per first two segments, made at the first path that needs it.
-- Only literal second segments get a list of their own: a parameter can
-- take every value, and one list (merged_other) serves them all.
function Router:candidates(path)
  local a, b = path:match("^/([^/]*)/?([^/]*)")
  local f = a and self.by_first[a]
  if not f then return self.wild end
  local second = f.second[b]
  local list = second and f.merged[b] or (not second and f.merged_other)
  if list then return list end
  list = {}
  for _, part in ipairs({ second or {}, f.other, self.wild }) do
    for _, g in ipairs(part) do list[#list + 1] = g end
  end
  if second then f.merged[b] = list else f.merged_other = list end
  return list
end

--- r:match(method, path) -> route, params | nil, "not_found" |
-- nil, "method_not_allowed", allow (sorted, with OPTIONS, and HEAD where
-- GET is) | nil, "bad_request", reason (a malformed %XX in a parameter).
-- path is the raw path without the query; parameters are percent-decoded.
-- HEAD falls back to the GET route; OPTIONS is the caller's to answer from
-- the allow list unless a route for it exists.
function Router:match(method, path)
  local exact = self.literal[path]
  if exact then
    local route = pick(exact, method)
    if route then return route, {} end
  end
  if not self.sorted then self:sort() end
  local matched
  local list = self:candidates(path)
  for i = 1, #list do
    local group = list[i]
    local values = group.pattern:match(path)
    if values then
      local route = pick(group, method)
      if route then
        local params, names = {}, route.names
        for k = 1, #names do
          local v, err = M.unescape(values[k])
          if not v then return nil, "bad_request", err end
          params[names[k]] = v
        end
        return route, params
      end
      matched = matched or {}
      matched[#matched + 1] = group
    end
  end
  if matched then return nil, "method_not_allowed", allow_list(matched) end
  return nil, "not_found"
end

--- r:routes() -> every route, in match precedence order, then by method.
function Router:routes()
  if not self.sorted then self:sort() end
  local out = {}
  for _, group in ipairs(self.groups) do
    local methods = {}
    for m in pairs(group.routes) do methods[#methods + 1] = m end
    table.sort(methods)
    for _, m in ipairs(methods) do out[#out + 1] = group.routes[m] end
  end
  return out
end

--- router.join(prefix, template) -> the template mounted under prefix:
-- ("/", "/jobs") -> "/jobs"; ("/jobrt/v1", "/") -> "/jobrt/v1". Raises
-- unless both start with "/".
function M.join(prefix, template)
  if type(prefix) ~= "string" or prefix:sub(1, 1) ~= "/" then
    error('router.join: prefix must start with "/", got ' .. tostring(prefix), 2)
  end
  if type(template) ~= "string" or template:sub(1, 1) ~= "/" then
    error('router.join: template must start with "/", got ' .. tostring(template), 2)
  end
  prefix = prefix:gsub("/+$", "")
  if prefix == "" then return template end
  if template == "/" then return prefix end
  return prefix .. template
end

return M
