-- Bacalhau StorageSpecs as jobrt task inputs and outputs. Where the task
-- sees its data follows Bacalhau: an inline or local-directory input is
-- mounted at its Path (the sandbox's input `target`, the path inside the
-- task), a URL download lands at Path/<the URL's file name>, and outputs
-- are what the task leaves under /outputs.
local crypto = require("jobrt.crypto")
local payload = require("api.bacalhau.payload")
local enums = require("api.bacalhau.enums")

local M = {}

local function fail(field, fmt, ...)
  return nil, { status = 400, field = field, message = string.format(fmt, ...) }
end

-- An absolute path without ".", ".." or empty parts and no trailing "/".
local function clean_abs(p)
  if type(p) ~= "string" or p:sub(1, 1) ~= "/" or p:find("%z") then return false end
  if p == "/" then return true end
  if p:sub(-1) == "/" then return false end
  for part in p:sub(2):gmatch("[^/]*") do
    if part == "" or part == "." or part == ".." then return false end
  end
  return not p:find("//", 1, true)
end
M.clean_abs = clean_abs

local function under(path, prefix)
  if prefix == "/" then return true end
  prefix = prefix:gsub("/+$", "")
  return path == prefix or path:sub(1, #prefix + 1) == prefix .. "/"
end

-- The sandbox keeps these for itself; an input cannot be mounted there.
local RESERVED = { "/proc", "/dev", "/tmp", "/outputs", "/work" }

local function check_target(path, field)
  if not clean_abs(path) or path == "/" then
    return fail(field, "%s %q must be an absolute path inside the task, without '.', '..' "
      .. "or '//', and not /", field, path)
  end
  for _, r in ipairs(RESERVED) do
    if under(path, r) then
      return fail(field, "%s %q is under %s, which the task's sandbox keeps for itself: "
        .. "mount inputs under /inputs or another folder", field, path, r)
    end
  end
  return true
end

local HEX = {}
for i = 0, 255 do HEX[string.format("%02x", i)] = string.char(i) end

--- storage.data_url(s) -> bytes | nil, reason: the data of an RFC 2397
-- "data:" URL, base64 or percent-encoded. Gzip (Bacalhau's packing of a
-- folder) is refused: unpacking archives is not done here.
function M.data_url(s)
  local meta, data = s:match("^[Dd][Aa][Tt][Aa]:([^,]*),(.*)$")
  if not meta then return nil, 'is not a "data:" URL (data:[<media type>][;base64],<data>)' end
  local params = {}
  for p in meta:gmatch("[^;]+") do params[#params + 1] = p:lower():match("^%s*(.-)%s*$") end
  local b64 = params[#params] == "base64"
  if params[1] == "application/gzip" or params[1] == "application/x-gzip" then
    return nil, "holds gzip data, which is not supported: send the file itself, not packed"
  end
  if b64 then
    local bytes = crypto.base64_decode(data) or crypto.base64url_decode(data)
    if not bytes then return nil, "is marked base64 but its data is not base64" end
    return bytes
  end
  for at in data:gmatch("()%%") do
    if not data:sub(at + 1, at + 2):find("^%x%x$") then
      return nil, "has a '%' not followed by two hex digits"
    end
  end
  local bytes = data:gsub("%%(%x%x)", function(h) return HEX[h:lower()] end)
  return bytes
end

-- The file name at the end of a URL's path, as Bacalhau names a download.
local function url_file(url)
  local path = url:match("^[%a][%w+.-]*://[^/?#]*(/[^?#]*)") or ""
  local base = path:match("([^/]*)$")
  if base == "" or base == "." or base == ".." then return "download" end
  return base
end

--- storage.input(s, field, opts) -> jobrt input | nil, err
-- s: a decoded StorageSpec; field: its path as the client spelt it
-- ("Spec.inputs[0]"); opts.host_paths: the host folders a LocalDirectory
-- may name (sandbox.allow_host_paths).
function M.input(s, field, opts)
  local function f(name) return field .. "." .. payload.spelt(s, name) end
  local src = s.StorageSource
  if not src then
    return fail(f("StorageSource"), "%s is missing: say where the data comes from "
      .. "(URLDownload, Inline or LocalDirectory)", f("StorageSource"))
  end
  local path = s.Path ~= "" and s.Path or nil
  if path then
    local ok, err = check_target(path, f("Path"))
    if not ok then return nil, err end
  end
  if src == "urldownload" then
    local url = s.URL or ""
    if not url:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]") then
      return fail(f("URL"), "%s must be an http:// or https:// URL", f("URL"))
    end
    return { source = "url", url = url, target = (path or "/inputs") .. "/" .. url_file(url) }
  elseif src == "inline" then
    local data, why = M.data_url(s.URL or "")
    if not data then return fail(f("URL"), "%s %s", f("URL"), why) end
    return { source = "inline", data = data, target = path }
  elseif src == "localdirectory" then
    local from = s.SourcePath
    if not clean_abs(from) then
      return fail(f("SourcePath"), "%s must be an absolute host path without '.', '..' or '//'",
        f("SourcePath"))
    end
    local allowed = false
    for _, p in ipairs(opts.host_paths or {}) do allowed = allowed or under(from, p) end
    if not allowed then
      return fail(f("SourcePath"), "%s %q is not under a host folder this node shares "
        .. "(sandbox.allow_host_paths)", f("SourcePath"), from)
    end
    return { source = "path", path = from, target = path, readonly = not s.ReadWrite }
  end
  return fail(f("StorageSource"), "storage source %s is not available on this node: use "
    .. "URLDownload, Inline or LocalDirectory", enums.name("StorageSource", src, "v1.0"))
end

--- storage.output(s, field) -> jobrt output {name, path} | nil, err.
-- Only /outputs is collected from a task, so a Path elsewhere is refused
-- rather than lost.
function M.output(s, field)
  local path = s.Path ~= "" and s.Path or "/outputs"
  local pf = field .. "." .. payload.spelt(s, "Path")
  if not clean_abs(path) or not under(path, "/outputs") then
    return fail(pf, "%s %q must be /outputs or a folder under it: results are collected "
      .. "from /outputs only", pf, path)
  end
  local name = s.Name ~= "" and s.Name or nil
  return { name = name or (path == "/outputs" and "outputs" or path:match("([^/]*)$")), path = path }
end

return M
