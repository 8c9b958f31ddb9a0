-- Pulling an image over the OCI distribution API into the image store:
-- the manifest (an index resolved to this machine's platform), the config
-- and the layers, several layers at once, each blob verified against its
-- digest as it is written (a mismatch is refused), a partial download
-- resumed with a Range request where the registry allows it. Bearer tokens
-- (the WWW-Authenticate challenge) and HTTP Basic. The image is named only
-- once every blob is in and its layers are unpacked (jobrt.images.install):
-- an interrupted pull leaves no name, only blobs and partial files that the
-- next pull reuses or `jobrt images gc` removes.
local async = require("jobrt.async")
local crypto = require("jobrt.crypto")
local http = require("jobrt.http_client")
local image = require("jobrt.image")
local images = require("jobrt.images")
local json = require("jobrt.json")

local M = {}

local ACCEPT = table.concat({
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

local MANIFEST_MAX = 4 * 1024 * 1024
local PARALLEL = 3

local function digest_of(bytes)
  return "sha256:" .. crypto.hex(crypto.sha256(bytes))
end

-- Challenge parameters: Bearer realm="...",service="...",scope="..."
local function parse_challenge(h)
  if type(h) ~= "string" then return nil end
  local scheme, rest = h:match("^%s*(%a+)%s*(.*)$")
  if not scheme then return nil end
  local params = {}
  for k, v in rest:gmatch('([%w_]+)="([^"]*)"') do params[k:lower()] = v end
  return scheme:lower(), params
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function host_of(url) return url:match("^https?://([^/]+)") end

-- A session with one registry: its URL, credentials and the token it got.
local Session = {}
Session.__index = Session

local function basic_header(reg)
  return "Basic " .. crypto.base64_encode(reg.username .. ":" .. reg.password)
end

function Session:token_for(params)
  local realm = params.realm
  if not realm or not realm:find("^https?://") then
    return nil, "the registry's bearer challenge has no usable realm"
  end
  local q = {}
  if params.service then q[#q + 1] = "service=" .. urlencode(params.service) end
  q[#q + 1] = "scope=" .. urlencode(params.scope or ("repository:" .. self.repo .. ":pull"))
  local url = realm .. (realm:find("?", 1, true) and "&" or "?") .. table.concat(q, "&")
  local headers = {}
  if self.reg.username then headers.Authorization = basic_header(self.reg) end
  local res, err = http.request({ url = url, headers = headers, timeout = 30 })
  if not res then return nil, "token: " .. err end
  if res.status ~= 200 then
    return nil, string.format("the token service at %s answered %d%s", host_of(realm) or realm,
      res.status, res.status == 401 and " (wrong credentials?)" or "")
  end
  local doc = json.decode(res.body or "")
  local token = type(doc) == "table" and (doc.token or doc.access_token)
  if type(token) ~= "string" or token == "" then return nil, "the token service gave no token" end
  return token
end

-- request(path_or_url, opts) -> res | nil, err: answers the challenge
-- once, follows redirects (without the credentials when they leave the
-- registry's host).
function Session:request(target, opts)
  local url = target:find("^https?://") and target or (self.reg.url .. target)
  for _ = 1, 6 do
    local headers = {}
    for k, v in pairs(opts.headers or {}) do headers[k] = v end
    if host_of(url) == host_of(self.reg.url) and self.auth then headers.Authorization = self.auth end
    local res, err = http.request({ method = opts.method, url = url, headers = headers,
      timeout = opts.timeout or 60, on_head = opts.on_head, on_data = opts.on_data })
    if not res then return nil, err end
    if res.status == 401 and not self.tried_auth and host_of(url) == host_of(self.reg.url) then
      self.tried_auth = true
      local scheme, params = parse_challenge(res.headers["www-authenticate"])
      if scheme == "bearer" then
        local token, terr = self:token_for(params)
        if not token then return nil, terr end
        self.auth = "Bearer " .. token
      elseif scheme == "basic" and self.reg.username then
        self.auth = basic_header(self.reg)
      else
        return nil, string.format("%s asks for credentials (%s): set username and password in"
          .. " images.registries", self.reg.host, tostring(scheme or "no challenge"))
      end
    elseif res.status >= 300 and res.status < 400 and res.headers.location then
      local loc = res.headers.location
      if not loc:find("^https?://") then
        loc = url:match("^(https?://[^/]+)") .. (loc:sub(1, 1) == "/" and loc or ("/" .. loc))
      end
      url = loc
    else
      return res
    end
  end
  return nil, "too many redirects or challenges from " .. self.reg.host
end

local function fail_status(what, res)
  local msg = res.body and res.body:match('"message"%s*:%s*"([^"]*)"')
  return string.format("%s: HTTP %d%s", what, res.status, msg and (": " .. msg) or "")
end

-- A manifest by tag or digest: its bytes and digest (verified when asked
-- by digest, or against the registry's Docker-Content-Digest).
function Session:manifest(ref)
  local res, err = self:request(string.format("/v2/%s/manifests/%s", self.repo, ref),
    { headers = { Accept = ACCEPT } })
  if not res then return nil, err end
  if res.status ~= 200 then return nil, fail_status("manifest " .. ref, res) end
  local body = res.body or ""
  if #body > MANIFEST_MAX then return nil, "the manifest is too large" end
  local d = digest_of(body)
  local claimed = ref:find("^sha256:") and ref or res.headers["docker-content-digest"]
  if claimed and claimed ~= d then
    return nil, string.format("digest mismatch: the manifest %s hashes to %s (refused)", claimed, d)
  end
  return body, d
end

-- Writes bytes (a document already verified) as blob digest.
local function put_blob(store, digest, bytes)
  if store:has_blob(digest) then return true end
  local w, off_or_err, code = store:blob_writer(digest, #bytes)
  if not w then return nil, off_or_err, code end
  if off_or_err > 0 then
    w:abort(false)
    w, off_or_err, code = store:blob_writer(digest, #bytes)
    if not w then return nil, off_or_err, code end
  end
  local ok, err, c2 = w:write(bytes)
  if not ok then w:abort(false) return nil, err, c2 end
  return w:commit()
end

-- Downloads blob desc into the store, resuming a partial file when the
-- registry honours Range. progress(n) gets the bytes as they come.
function Session:blob(store, desc, max, progress)
  if store:has_blob(desc.digest) then
    progress(desc.size or 0)
    return true
  end
  for attempt = 1, 2 do
    local w, offset, code = store:blob_writer(desc.digest, max)
    if not w then return nil, offset, code end
    local headers = {}
    if offset > 0 then headers.Range = "bytes=" .. offset .. "-" end
    local status, werr, wcode
    local res, err = self:request(string.format("/v2/%s/blobs/%s", self.repo, desc.digest), {
      headers = headers, timeout = 120,
      on_head = function(st) status = st end,
      on_data = function(chunk)
        if status == 200 and offset > 0 then
          -- The registry sent it all again: start the file afresh.
          w:abort(false)
          w, offset = store:blob_writer(desc.digest, max)
          if not w then werr = offset return false end
          offset = 0
        end
        local ok, e, c = w:write(chunk)
        if not ok then werr, wcode = e, c return false end
        progress(#chunk)
      end })
    if werr then
      if w then w:abort(false) end
      return nil, werr, wcode
    end
    if not res then
      w:abort(true) -- kept: the next try resumes from here
      return nil, string.format("blob %s: %s (the part received is kept for a resume)",
        desc.digest, err)
    end
    if res.status == 416 and attempt == 1 then
      w:abort(false) -- our partial file is not a prefix the registry knows
    elseif res.status ~= 200 and res.status ~= 206 then
      w:abort(true)
      return nil, fail_status("blob " .. desc.digest, res)
    else
      return w:commit()
    end
  end
  return nil, "blob " .. desc.digest .. ": the registry refused the resume"
end

-- Runs fns (functions returning ok, err, code) at most n at a time; the
-- first error wins.
local function run_parallel(fns, n)
  if #fns == 0 then return true end
  local next_i, running, first_err, first_code = 1, 0, nil, nil
  return async.wait(function(wake)
    local function start()
      while running < n and next_i <= #fns and not first_err do
        local fn = fns[next_i]
        next_i = next_i + 1
        running = running + 1
        async.spawn(function()
          local ok, err, code = fn()
          if not ok and not first_err then first_err, first_code = err or "failed", code end
        end, { on_done = function()
          running = running - 1
          if first_err and running == 0 then wake(nil, first_err, first_code)
          elseif next_i > #fns and running == 0 then wake(true)
          else start() end
        end, on_error = function(err)
          running = running - 1
          first_err = first_err or tostring(err)
          if running == 0 then wake(nil, first_err) end
        end })
      end
    end
    start()
  end)
end

-- pull(cfg, store, ref, opts) -> info | nil, err, code. opts.name: the
-- name to give (default the reference); opts.any_registry: a registry not
-- in images.registries is reached at https://HOST (the command line);
-- opts.progress(event) with {phase = "manifest"|"layers"|"unpacking",
-- done, total, layers_done, layers} for the waiting reason or a terminal.
function M.pull(cfg, store, refname, opts)
  opts = opts or {}
  local r, err = images.parse_ref(refname)
  if not r then return nil, err, "INVALID" end
  local reg = images.registry(cfg, r.host)
  if not reg then
    if not opts.any_registry then
      return nil, string.format("registry %s is not in images.registries", r.host), "INVALID"
    end
    reg = { host = r.host, url = "https://" .. r.host }
  end
  local notify = opts.progress or function() end
  local hold <close>, herr = store:pull_hold()
  if not hold then return nil, herr end
  local s = setmetatable({ reg = reg, repo = r.repo }, Session)
  notify({ phase = "manifest" })
  local body, digest = s:manifest(r.ref)
  if not body then return nil, digest end
  local m, perr = image.parse_manifest(body)
  if not m then return nil, "manifest: " .. perr, "INVALID" end
  local ok, werr, wcode = put_blob(store, digest, body)
  if not ok then return nil, werr, wcode end
  local top = digest
  if m.is_index then
    if not m.pick then return nil, m.pick_error, "INVALID" end
    body, digest = s:manifest(m.items[m.pick].digest)
    if not body then return nil, digest end
    m, perr = image.parse_manifest(body)
    if not m or m.is_index then return nil, "manifest: " .. (perr or "an index inside an index"), "INVALID" end
    ok, werr, wcode = put_blob(store, digest, body)
    if not ok then return nil, werr, wcode end
  end
  local images_cfg = cfg.images or {}
  local max = images_cfg.max_image_size and images_cfg.max_image_size > 0 and images_cfg.max_image_size or 0
  local total, done, layers_done = m.config.size or 0, 0, 0
  for _, l in ipairs(m.items) do total = total + (l.size or 0) end
  local function progress(n)
    done = done + n
    notify({ phase = "layers", done = done, total = total, layers_done = layers_done, layers = #m.items })
  end
  local jobs = { function() return s:blob(store, m.config, MANIFEST_MAX, progress) end }
  for _, l in ipairs(m.items) do
    jobs[#jobs + 1] = function()
      local bok, berr, bcode = s:blob(store, l, max, progress)
      if bok then
        layers_done = layers_done + 1
        progress(0)
      end
      return bok, berr, bcode
    end
  end
  ok, werr, wcode = run_parallel(jobs, PARALLEL)
  if not ok then return nil, werr, wcode end
  notify({ phase = "unpacking", done = done, total = total, layers_done = #m.items, layers = #m.items })
  local info, ierr, icode = images.install(store, opts.name or r.name, top, "pull " .. r.name)
  if not info then return nil, ierr, icode end
  return info
end

-- Pulls in progress in this process, by image name: on-demand pulls
-- started by submissions, shared by every task that waits for them.
local pulling = {}

-- ensure(cfg, store, name, on_state): starts pulling name unless it is
-- already; on_state(state) is called with {phase, ...} as it goes and
-- finally {phase = "done"} or {phase = "failed", error = msg}.
function M.ensure(cfg, store, name, on_state)
  local norm = image.name_normal(name)
  local p = pulling[norm]
  if p then
    p.watchers[#p.watchers + 1] = on_state
    return p
  end
  p = { watchers = { on_state }, state = { phase = "manifest" } }
  pulling[norm] = p
  local function tell(st)
    p.state = st
    for _, w in ipairs(p.watchers) do pcall(w, st) end
  end
  async.spawn(function()
    local info, err = M.pull(cfg, store, name, { progress = tell })
    pulling[norm] = nil
    if info then tell({ phase = "done", info = info }) else tell({ phase = "failed", error = err }) end
  end, { on_error = function(err)
    pulling[norm] = nil
    tell({ phase = "failed", error = tostring(err) })
  end })
  return p
end

-- Jobs held until their images are pulled: id -> names.
local waiting_jobs = {}

local function human(n)
  local units, i = { "B", "KiB", "MiB", "GiB" }, 1
  n = n or 0
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and string.format("%d %s", n, units[i]) or string.format("%.1f %s", n, units[i])
end

-- A sentence for a pull's state.
function M.describe(name, st)
  if not st or st.phase == "manifest" then return "pulling image " .. name .. ": fetching its manifest" end
  if st.phase == "layers" then
    return string.format("pulling image %s: %d/%d layers, %s of %s", name, st.layers_done or 0,
      st.layers or 0, human(st.done), human(st.total))
  end
  if st.phase == "unpacking" then return "pulling image " .. name .. ": unpacking its layers" end
  if st.phase == "failed" then return "pulling image " .. name .. " failed: " .. tostring(st.error) end
  return "pulling image " .. name
end

function M.hold(id, names) waiting_jobs[id] = names end
function M.release(id) waiting_jobs[id] = nil end

-- Why job id waits (its first image still being pulled), or nil.
function M.waiting(id)
  local names = waiting_jobs[id]
  if not names then return nil end
  for _, name in ipairs(names) do
    local p = pulling[image.name_normal(name)]
    if p then return M.describe(name, p.state) end
  end
  return "pulling images: done, starting"
end

-- The pull of name in progress here, or nil.
function M.current(name)
  return pulling[image.name_normal(name)]
end

return M
