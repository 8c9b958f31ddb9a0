-- The S3 publisher: a finished task's output files uploaded to an
-- S3-compatible store (AWS Signature Version 4, path-style or
-- virtual-hosted addressing), each under `prefix` .. its name; files over
-- `multipart_threshold` in parts of `part_size`, `parallel` at a time,
-- streamed from disk. The
-- results then point at presigned GET URLs valid for `url_ttl` (the same
-- STAC item as publish.local otherwise). Keys are fixed by the job and
-- task, so an upload tried again replaces the same objects; a multipart
-- upload that fails is aborted. A failure names S3's error code and
-- message; the outputs stay where they are.
--
--   plugins:
--     s3: {use: publish.s3, endpoint: "https://s3.eu-west-1.amazonaws.com", region: eu-west-1,
--          bucket: results, prefix: "jobs/{job}/{task}/", addressing: virtual,
--          access_key_env: AWS_ACCESS_KEY_ID, secret_key_env: AWS_SECRET_ACCESS_KEY, url_ttl: 1d}
--
-- Object bodies are sent as UNSIGNED-PAYLOAD (as curl and the AWS SDKs do
-- for streamed bodies): use an https endpoint where the path is not trusted.
local stac = require("policies.publish.local")

local M = {}

local MiB = 1024 * 1024

M.schema = {
  endpoint = { type = "string", required = true, pattern = "^https?://[^/?#]+/?$",
    pattern_text = 'expected the store\'s base URL, like "https://s3.amazonaws.com"',
    description = "the store's base URL (scheme, host and port)" },
  region = { type = "string", default = "us-east-1" },
  bucket = { type = "string", required = true, pattern = "^[%w][%w%.%-_]*$",
    pattern_text = "expected a bucket name (letters, digits, '.', '-', '_')" },
  prefix = { type = "string", default = "{job}/{task}/", empty = true,
    description = "the keys' prefix; {job} and {task} are replaced" },
  addressing = { type = "string", one_of = { "path", "virtual" }, default = "path",
    description = "path: ENDPOINT/BUCKET/KEY; virtual: BUCKET.HOST/KEY" },
  access_key = { type = "string", secret = true },
  secret_key = { type = "string", secret = true },
  access_key_env = { type = "string", description = "the environment variable holding the access key" },
  secret_key_env = { type = "string", description = "the environment variable holding the secret key" },
  url_ttl = { type = "duration", default = 3600, min = 1, max = 7 * 24 * 3600,
    description = "how long presigned URLs stay valid (at most 7 days)" },
  ca_file = { type = "string", description = "PEM CA bundle for an https endpoint (default: the system's)" },
  multipart_threshold = { type = "bytes", default = 64 * MiB, min = 5 * MiB,
    description = "files larger than this go up in parts" },
  part_size = { type = "bytes", default = 16 * MiB, min = 5 * MiB, max = 5 * 1024 * MiB },
  parallel = { type = "integer", default = 4, min = 1, max = 16, description = "parts sent at once" },
  timeout = { type = "duration", default = 60, min = 1, description = "the longest silence of one request" },
  license = { type = "string", default = "proprietary" },
}

local function fail(code, message)
  return nil, { code = code, message = message, status = 502 }
end

-- The credentials: given, or from the environment variables named.
local function credentials(ctx)
  local o = ctx.options
  local ak = o.access_key or (o.access_key_env and ctx.getenv(o.access_key_env))
  local sk = o.secret_key or (o.secret_key_env and ctx.getenv(o.secret_key_env))
  if not ak or ak == "" then
    return nil, "no access key (access_key, or access_key_env naming a set environment variable)"
  end
  if not sk or sk == "" then
    return nil, "no secret key (secret_key, or secret_key_env naming a set environment variable)"
  end
  return { access_key = ak, secret_key = sk }
end

-- Where an object is: scheme://host, the path (encoded) and the Host.
local function locate(ctx, key)
  local o = ctx.options
  local scheme, host = o.endpoint:match("^(https?)://([^/?#]+)/?$")
  local path = "/" .. ctx.sigv4.encode(key, true)
  if o.addressing == "virtual" then
    host = o.bucket .. "." .. host
  else
    path = "/" .. o.bucket .. path
  end
  return scheme .. "://" .. host, path, host
end

local function key_of(o, job, task, name)
  local prefix = o.prefix:gsub("{job}", job.id):gsub("{task}", task)
  return prefix .. name
end

-- S3's <Code> and <Message> from an error answer.
local function s3_error(what, res)
  local body = res.body or ""
  local code = body:match("<Code>(.-)</Code>") or ("HTTP" .. tostring(res.status))
  local message = body:match("<Message>(.-)</Message>") or (body ~= "" and body:sub(1, 200)) or "no message"
  return fail(code, string.format("%s: %d %s: %s", what, res.status, code, message))
end

local TYPES = {
  json = "application/json", geojson = "application/geo+json", tif = "image/tiff", tiff = "image/tiff",
  nc = "application/x-netcdf", csv = "text/csv", txt = "text/plain", png = "image/png", tar = "application/x-tar",
}

-- The client's options of one signed request: r = {method, key, query,
-- headers, body, file, offset, length}.
local function signed(ctx, creds, r)
  local o = ctx.options
  local base, path, host = locate(ctx, r.key)
  local query = r.query or {}
  local qs = ctx.sigv4.query(query)
  local headers = ctx.sigv4.sign({
    method = r.method, host = host, path = path, query = query, headers = r.headers,
    payload = r.file and ctx.sigv4.UNSIGNED or ctx.sigv4.sha256_hex(r.body or ""),
    access_key = creds.access_key, secret_key = creds.secret_key, region = o.region, now = os.time(),
  })
  return {
    method = r.method, url = base .. path .. (qs ~= "" and ("?" .. qs) or ""), headers = headers,
    body = r.body, body_file = r.file and { file = r.file, offset = r.offset or 0, length = r.length } or nil,
    timeout = o.timeout, ca_file = o.ca_file,
  }
end

local function unreachable(ctx, err)
  return fail("Unreachable", string.format("S3 endpoint %s: %s", ctx.options.endpoint, tostring(err)))
end

local function call(ctx, creds, r)
  local res, err = ctx.http.request(signed(ctx, creds, r))
  if not res then return unreachable(ctx, err) end
  return res
end

local function put_single(ctx, creds, key, h, ctype)
  local res, f = call(ctx, creds, { method = "PUT", key = key, file = h, length = h.size,
    headers = { ["content-type"] = ctype } })
  if not res then return nil, f end
  if res.status ~= 200 then return s3_error("PutObject " .. key, res) end
  return { key = key, etag = res.headers.etag, size = h.size }
end

local function abort(ctx, creds, key, upload_id)
  call(ctx, creds, { method = "DELETE", key = key, query = { uploadId = upload_id } })
end

local function put_multipart(ctx, creds, key, h, ctype)
  local o = ctx.options
  local res, f = call(ctx, creds, { method = "POST", key = key, query = { uploads = "" },
    headers = { ["content-type"] = ctype } })
  if not res then return nil, f end
  if res.status ~= 200 then return s3_error("CreateMultipartUpload " .. key, res) end
  local upload_id = (res.body or ""):match("<UploadId>(.-)</UploadId>")
  if not upload_id then return fail("BadAnswer", "CreateMultipartUpload " .. key .. ": no UploadId in the answer") end
  -- The parts, `parallel` at a time, each read from disk as it is sent.
  local parts = {}
  local count = (h.size + o.part_size - 1) // o.part_size
  for first = 1, count, o.parallel do
    local batch = {}
    for n = first, math.min(count, first + o.parallel - 1) do
      local offset = (n - 1) * o.part_size
      batch[#batch + 1] = signed(ctx, creds, { method = "PUT", key = key, file = h, offset = offset,
        length = math.min(o.part_size, h.size - offset), query = { partNumber = tostring(n), uploadId = upload_id } })
    end
    for i, r in ipairs(ctx.http.request_all(batch)) do
      local n, pr, pf = first + i - 1, r[1], nil
      if not pr then pr, pf = unreachable(ctx, r[2]) end
      if pr and pr.status ~= 200 then pr, pf = s3_error(string.format("UploadPart %d of %s", n, key), pr) end
      if not pr then
        abort(ctx, creds, key, upload_id)
        return nil, pf
      end
      parts[n] = string.format("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, pr.headers.etag or "")
    end
  end
  local n = count
  local body = "<CompleteMultipartUpload>" .. table.concat(parts) .. "</CompleteMultipartUpload>"
  local cr, cf = call(ctx, creds, { method = "POST", key = key, body = body, query = { uploadId = upload_id },
    headers = { ["content-type"] = "application/xml" } })
  if not cr or cr.status ~= 200 or (cr.body or ""):find("<Error>", 1, true) then
    if cr then cr, cf = s3_error("CompleteMultipartUpload " .. key, cr) end
    abort(ctx, creds, key, upload_id)
    return nil, cf
  end
  return { key = key, etag = (cr.body or ""):match("<ETag>(.-)</ETag>"), size = h.size, parts = n }
end

--- upload(job, task, files, ctx) -> {bucket, endpoint, objects = {name =
-- {key, etag, size}}} | nil, {code, message}
function M.upload(job, task, files, ctx)
  local o = ctx.options
  local creds, cerr = credentials(ctx)
  if not creds then return fail("NoCredentials", cerr) end
  local objects = {}
  for _, f in ipairs(files) do
    local h, herr = ctx.open(f.name)
    if not h then return fail("NoSuchFile", herr) end
    local key = key_of(o, job, task, f.name)
    local ext = f.name:match("%.([%w]+)$")
    local ctype = ext and TYPES[ext:lower()] or "application/octet-stream"
    local obj, err
    if h.size > o.multipart_threshold then
      obj, err = put_multipart(ctx, creds, key, h, ctype)
    else
      obj, err = put_single(ctx, creds, key, h, ctype)
    end
    if not obj then return nil, err end
    objects[f.name] = obj
  end
  return { bucket = o.bucket, endpoint = o.endpoint, objects = objects }
end

--- publish(job, task, files, ctx) -> the STAC item of publish.local, its
-- hrefs presigned GET URLs of the uploaded objects.
function M.publish(job, task, files, ctx)
  local o = ctx.options
  local creds, cerr = credentials(ctx)
  if not creds then error(cerr, 0) end
  local objects = ctx.uploaded and ctx.uploaded.objects or {}
  local now = os.time()
  local url = function(name)
    local obj = objects[name]
    local key = obj and obj.key or key_of(o, job, task, name)
    local base, path, host = locate(ctx, key)
    return base .. path .. "?" .. ctx.sigv4.presign({
      method = "GET", host = host, path = path, access_key = creds.access_key, secret_key = creds.secret_key,
      region = o.region, expires = o.url_ttl, now = now,
    })
  end
  local view = setmetatable({ url = url }, { __index = ctx })
  local item = stac.publish(job, task, files, view)
  item.properties.expires = os.date("!%Y-%m-%dT%H:%M:%SZ", now + o.url_ttl)
  return item
end

return M
