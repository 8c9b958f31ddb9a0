-- Results through publishers. A job names a publisher (PublisherSpec.Type
-- or Publisher: noop, local, ipfs, s3, ...); the deployment maps names to
-- publisher plugins (`surfaces.bacalhau.publishers`), ipfs and estuary
-- falling back to `local`. A finished execution's result is one bundle, as
-- Bacalhau publishes it: stdout, stderr, exitCode and outputs/ (a tar
-- archive served at a signed URL by jobrt); the plugin turns it into the
-- asset whose href becomes the StorageSpec's URL.
local core = require("jobrt.core")
local json = require("jobrt.json")
local view = require("api.bacalhau.view")

local M = {}

local BUNDLE = "results.tar"
local FILE_MAX = 256 * 1024 * 1024 -- bytes of one output file a bundle takes
local FALLBACK = { ipfs = "local", estuary = "local", filecoin = "local" }
-- Every view of a finished job publishes its results: a failed upload is
-- tried again at most this often (seconds), not at every poll.
local RETRY_AFTER = 30

local function publisher_of(s, name)
  local p = s.publishers[name]
  if not p and FALLBACK[name] then p = s.publishers[FALLBACK[name]] end
  return p
end

--- check_publisher(s, name) -> the name (lower case) when the deployment
-- has it or it is noop; else the request fails 400 naming the known ones.
function M.check_publisher(s, name)
  name = (name or "local"):lower()
  if name == "noop" or publisher_of(s, name) then return name end
  local known = { "noop" }
  for k in pairs(s.publishers) do known[#known + 1] = k end
  table.sort(known)
  s.ctx.fail(400, "BadRequest", string.format(
    "Spec.PublisherSpec.Type: publisher %q is not available here (surfaces.bacalhau.publishers has: %s)",
    name, table.concat(known, ", ")))
end

local function base_url(req)
  return (req.tls and "https://" or "http://") .. (req.headers.host or "127.0.0.1")
end

local function bundle_path(s, job, task)
  return s.ctx.mount .. "/results/" .. job.id .. "/" .. task.alias .. "/" .. BUNDLE
end

local LOG_PAGE = 1000

--- output_of(job, task[, max]) -> stdout, stdout_truncated, stderr,
-- stderr_truncated: the task's own streams (its info and warn lines; the
-- runtime writes its own messages at error level), max bytes of each.
function M.output_of(job, task, max)
  max = max or math.huge
  local out, err = { n = 0, parts = {}, truncated = false }, { n = 0, parts = {}, truncated = false }
  local after
  for _ = 1, 1000 do
    local page = core.logs(job.id, { after = after, limit = LOG_PAGE })
    if not page or #page == 0 then break end
    for _, l in ipairs(page) do
      if l.task == task.alias and (l.level == "info" or l.level == "warn") then
        local b = l.level == "info" and out or err
        local line = l.message .. "\n"
        if b.truncated or b.n + #line > max then
          b.truncated = true
        else
          b.parts[#b.parts + 1] = line
          b.n = b.n + #line
        end
      end
    end
    after = page[#page].id
    if #page < LOG_PAGE then break end
  end
  return table.concat(out.parts), out.truncated, table.concat(err.parts), err.truncated
end

local function finished(task)
  return task.state == "succeeded" or task.state == "failed"
end

--- published(s, req, job, task) -> StorageSpec | nil: where the task's
-- results are, once it finished and its publisher published them.
function M.published(s, req, job, task)
  if not finished(task) then return nil end
  local doc = type(job.doc) == "table" and job.doc or {}
  local name = doc.Publisher or "local"
  if name == "noop" then return nil end
  local p = publisher_of(s, name)
  if not p then return nil end
  local ttl = tonumber(p.options.url_ttl) or 3600
  local path = bundle_path(s, job, task)
  local now = os.time()
  -- A publisher that uploads (publish.s3) takes the bundle as a file.
  local file = { name = BUNDLE }
  if type(p.mod.upload) == "function" then
    local fpath, size = M.bundle_file(s, job, task)
    if not fpath then
      s.ctx.log("error", string.format("bundling %s of job %s failed: %s", task.alias, job.id, tostring(size)))
      return nil
    end
    file.path, file.size = fpath, size
  end
  local item, f = p.publication:publish(job, task.alias, { file }, {
    url = function() return base_url(req) .. path .. "?" .. s.ctx.signer:sign("GET", path, ttl) end,
    expires = os.date("!%Y-%m-%dT%H:%M:%SZ", now + ttl), now = os.date("!%Y-%m-%dT%H:%M:%SZ", now),
    status = view.job_state(job),
  }, { retry_after = RETRY_AFTER })
  local asset = item and type(item.assets) == "table" and item.assets[BUNDLE]
  if type(asset) ~= "table" or type(asset.href) ~= "string" then
    s.ctx.log("error", string.format("publisher %s gave no asset for %s of job %s: %s", p.plugin, task.alias,
      job.id, item and "no assets[" .. BUNDLE .. "].href" or (tostring(f.code) .. ": " .. tostring(f.message))))
    return nil
  end
  local v11 = doc.APIVersion == "V1beta2"
  return {
    StorageSource = v11 and "urlDownload" or "URLDownload",
    Name = "job-" .. job.id .. "-" .. task.alias,
    URL = asset.href,
    [v11 and "Path" or "path"] = "/outputs",
    Metadata = { expires = item.properties and item.properties.expires or nil, publisher = name },
  }
end

--- list(s, req, job) -> [{NodeID, Data = StorageSpec}], one per published execution
function M.list(s, req, job)
  local out = {}
  for _, task in ipairs(job.tasks or {}) do
    local data = M.published(s, req, job, task)
    if data then out[#out + 1] = { NodeID = s.node.id, Data = data } end
  end
  return json.array(out)
end

---------------------------------------------------------------------------
-- The bundle: a POSIX ustar archive, written as it is read.

local function octal(n, width)
  return string.format("%0" .. (width - 1) .. "o", n) .. "\0"
end

local function tar_header(name, size, mtime)
  local fields = {
    name .. string.rep("\0", 100 - #name), octal(420, 8), octal(0, 8), octal(0, 8),
    octal(size, 12), octal(mtime, 12), "        ", "0", string.rep("\0", 100),
    "ustar\0", "00", string.rep("\0", 32), string.rep("\0", 32), octal(0, 8), octal(0, 8),
    string.rep("\0", 155), string.rep("\0", 12),
  }
  local h = table.concat(fields)
  local sum = 0
  for i = 1, #h do sum = sum + h:byte(i) end
  return h:sub(1, 148) .. string.format("%06o\0 ", sum) .. h:sub(157)
end

local function tar_entry(out, name, data, mtime)
  if #name > 99 then return true end -- ustar's name field; output names are one component
  if not out:write(tar_header(name, #data, mtime)) then return false end
  if #data > 0 and not out:write(data) then return false end
  local pad = (512 - #data % 512) % 512
  return pad == 0 or out:write(string.rep("\0", pad))
end

local function write_bundle(s, out, job, task)
  local stdout, _, stderr = M.output_of(job, task, FILE_MAX)
  local mtime = view.unix(task.ended_at or job.updated_at)
  local exit = tostring(task.exit_code or (task.outcome == "oom" and 137) or -1)
  local good = tar_entry(out, "stdout", stdout, mtime) and tar_entry(out, "stderr", stderr, mtime)
    and tar_entry(out, "exitCode", exit, mtime)
  for _, f in ipairs(good and s.ctx.outputs:list(job.id, task.alias) or {}) do
    local data = s.ctx.outputs:read(job.id, task.alias, f.name, FILE_MAX)
    if data and not tar_entry(out, "outputs/" .. f.name, data, mtime) then good = false break end
  end
  return good and out:write(string.rep("\0", 1024))
end

--- bundle_file(s, job, task) -> path, size | nil, err: the bundle written
-- once beside the task's outputs, for publishers that upload it.
function M.bundle_file(s, job, task)
  return s.ctx.outputs:derived(job.id, task.alias, BUNDLE, function(out) return write_bundle(s, out, job, task) end)
end

function M.routes(r, s)
  local ctx = s.ctx
  r:add("GET", "/results/{job_id}/{alias}/" .. BUNDLE, function(req, res)
    local ok, status, code, message = ctx.signer:verify("GET", req.path, req.query)
    if not ok then ctx.fail(status, code, message) end
    local job = core.get(req.params.job_id)
    local task
    for _, t in ipairs(job and job.surface == "bacalhau" and job.tasks or {}) do
      if t.alias == req.params.alias then task = t end
    end
    if not task or not finished(task) then
      ctx.fail(404, "NotFound", "no results for this execution (yet)")
    end
    local out = res:stream(200, {
      ["Content-Type"] = "application/x-tar",
      ["Content-Disposition"] = string.format('attachment; filename="%s-%s.tar"', job.id, task.alias),
    })
    write_bundle(s, out, job, task)
    out:close()
  end, { public = true })
end

return M
