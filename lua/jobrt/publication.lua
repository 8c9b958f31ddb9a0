-- Publishing a finished task's results through a publisher plugin, for
-- every surface alike (openEO's STAC items, Bacalhau's StorageSpecs). A
-- publisher's `publish(job, task, files, ctx) -> item` describes the
-- results (cheap, on every request); one that stores them elsewhere also
-- has `upload(job, task, files, ctx) -> record | nil, {code, message}`,
-- run once per finished task: its record is kept with the job's published
-- assets (core.add_result) and handed to publish as ctx.uploaded. Two
-- requests for the same results share one upload; a failed one is tried
-- again at the next request, and is written to the job's log.
--
-- What a publisher gets besides its options (ctx), narrowly:
--   open(name) -> a handle {name, size} of one of the files given, for
--     http.request's body_file ({file = handle, offset, length})
--   http.request(opts) -> jobrt.http_client's request; http.request_all
--     ({opts, ...}) -> {{res} | {nil, err}, ...}: up to 16 at once
--   sigv4: jobrt.sigv4 (read-only)
--   getenv(name) -> the daemon's environment variable, only for names its
--     options give in keys ending in _env (e.g. secret_key_env)
--   log(level, message), now (epoch seconds), null
local async = require("jobrt.async")
local http_client = require("jobrt.http_client")
local runtime = require("jobrt.runtime")
local sigv4 = require("jobrt.sigv4")

local M = {}

local function readonly(t, name)
  return setmetatable({}, {
    __index = t,
    __newindex = function() error(name .. " is read-only", 2) end,
    __metatable = false,
  })
end

local SIGV4 = readonly(sigv4, "jobrt.sigv4")
local MAX_ALL = 16 -- requests http.request_all makes at once

local Publication = {}
Publication.__index = Publication

--- publication.new{name =, mod =, options =, core =, log =} -> pub.
-- name: the plugin's name; mod its module; options its checked options.
function M.new(opts)
  local allowed = {}
  for k, v in pairs(opts.options or {}) do
    if type(k) == "string" and k:match("_env$") and type(v) == "string" then allowed[v] = true end
  end
  return setmetatable({
    name = opts.name, mod = opts.mod, options = opts.options or {},
    core = opts.core, log = opts.log or function(level, msg) runtime.log(level, msg) end,
    memory = opts.memory or 64 * 1024 * 1024,
    env_names = allowed, flying = {}, failures = {},
  }, Publication)
end

-- The grants of one call: files is {{name, size, path}}; paths stay here.
function Publication:grants(files)
  local handles = setmetatable({}, { __mode = "k" })
  local by_name = {}
  for _, f in ipairs(files) do by_name[f.name] = f end
  local g = {
    options = self.options, null = require("jobrt.json").null, now = os.time(), sigv4 = SIGV4,
    log = function(level, msg) self.log(level, "publisher " .. tostring(self.name) .. ": " .. tostring(msg)) end,
  }
  g.open = function(name)
    local f = by_name[name]
    if not f or type(f.path) ~= "string" then return nil, "no such file to publish: " .. tostring(name) end
    local h = { name = f.name, size = f.size }
    handles[h] = f.path
    return h
  end
  g.getenv = function(name)
    if not self.env_names[name] then error("getenv: " .. tostring(name) .. " is not named by an _env option", 2) end
    return os.getenv(name)
  end
  local function translate(o, what)
    if type(o) ~= "table" then error(what .. ": a table of options expected", 3) end
    local copy = {}
    for k, v in pairs(o) do copy[k] = v end
    if o.body_file ~= nil then
      local b = o.body_file
      local path = type(b) == "table" and handles[b.file]
      if not path then error(what .. ": body_file.file must be a handle from ctx.open", 3) end
      copy.body_file = { path = path, offset = b.offset or 0, length = b.length or b.file.size }
    end
    return copy
  end
  g.http = {
    request = function(o) return http_client.request(translate(o, "http.request")) end,
    -- request_all({opts, ...}) -> {{res} | {nil, err}, ...}: the requests
    -- at once (at most MAX_ALL), each on its own connection, in order.
    request_all = function(list)
      if type(list) ~= "table" or #list > MAX_ALL then
        error("http.request_all: a list of at most " .. MAX_ALL .. " requests expected", 2)
      end
      local copies = {}
      for i, o in ipairs(list) do copies[i] = translate(o, "http.request_all") end
      local results, left = {}, #copies
      if left == 0 then return results end
      async.wait(function(wake)
        for i, o in ipairs(copies) do
          -- The runtime's own client code, not the plugin's: bounded by memory.
          async.spawn(function() results[i] = table.pack(http_client.request(o)) end, {
            memory = self.memory,
            on_done = function() left = left - 1 if left == 0 then wake() end end,
            on_error = function(err)
              results[i] = { nil, tostring(err) }
              left = left - 1
              if left == 0 then wake() end
            end,
          })
        end
      end)
      return results
    end,
  }
  return g
end

-- The upload kept for (job, task), when it was made of these very files.
local function kept(core, job, task, files)
  local assets = core.results(job.id)
  for _, a in ipairs(type(assets) == "table" and assets or {}) do
    if a.name == "publication:" .. task and type(a.files) == "table" and #a.files == #files then
      local same = true
      for i, f in ipairs(files) do
        local k = a.files[i]
        if type(k) ~= "table" or k.name ~= f.name or k.size ~= f.size then same = false break end
      end
      if same then return a.record end
    end
  end
  return nil
end

-- Run the upload once for (job, task); concurrent callers wait for it. A
-- failure less than retry_after seconds old is answered again as it was.
function Publication:upload(job, task, files, retry_after)
  local record = kept(self.core, job, task, files)
  if record then return record end
  local key = job.id .. "/" .. task
  local last = self.failures[key]
  if last and retry_after and os.time() - last.at < retry_after then return nil, last.failure end
  local flying = self.flying[key]
  if flying then
    local r, f = require("jobrt.async").wait(function(wake) flying[#flying + 1] = wake end)
    if r then return r end
    return nil, f
  end
  flying = {}
  self.flying[key] = flying
  local ctx = self:grants(files)
  local ok, r, f = pcall(self.mod.upload, job, task, files, ctx)
  if not ok then r, f = nil, { code = "PublisherFailed", message = tostring(r) } end
  if r == nil and type(f) ~= "table" then f = { code = "PublisherFailed", message = tostring(f or "no record") } end
  if r ~= nil then
    self.failures[key] = nil
    local list = {}
    for i, x in ipairs(files) do list[i] = { name = x.name, size = x.size } end
    local saved, err = self.core.add_result(job.id, "publication:" .. task,
      { publisher = self.name, files = list, record = r, at = os.date("!%Y-%m-%dT%H:%M:%SZ") })
    if not saved then self.log("error", "keeping the upload of " .. key .. " failed: " .. tostring(err)) end
  else
    self.failures[key] = { at = os.time(), failure = f }
    self.core.log(job.id, { level = "error", task = task, message = string.format(
      "publishing the results with %s failed: %s: %s", tostring(self.name), tostring(f.code), tostring(f.message)) })
  end
  self.flying[key] = nil
  for _, wake in ipairs(flying) do wake(r, f) end
  return r, f
end

--- pub:publish(job, task, files, extra[, opts]) -> item | nil, {code,
-- message}. files: {{name, size, path}} (path: where the bytes are, for
-- uploads); extra: what the surface adds to the publisher's ctx (url,
-- expires, status, ...); opts.upload = false describes without uploading
-- (results not final yet); opts.retry_after (seconds): a failed upload is
-- not tried again sooner (for surfaces that publish while showing a job).
function Publication:publish(job, task, files, extra, opts)
  local uploaded
  if type(self.mod.upload) == "function" and not (opts and opts.upload == false) then
    local f
    uploaded, f = self:upload(job, task, files, opts and opts.retry_after)
    if not uploaded then return nil, f end
  end
  local ctx = self:grants(files)
  for k, v in pairs(extra or {}) do ctx[k] = v end
  ctx.uploaded = uploaded
  local public = {}
  for i, f in ipairs(files) do public[i] = { name = f.name, size = f.size } end
  local ok, item = pcall(self.mod.publish, job, task, public, ctx)
  if not ok then return nil, { code = "PublisherFailed", message = tostring(item) } end
  if type(item) ~= "table" then return nil, { code = "PublisherFailed", message = "the publisher returned no item" } end
  return item
end

return M
