-- The local publisher: a job's results as a STAC 1.0 Item whose asset hrefs
-- are signed URLs served by jobrt itself (valid until `expires`), plus a
-- `reproducibility` asset holding the process and a `canonical` link to a
-- signed copy of the Item. Options: url_ttl (read by the surface, which
-- signs), license.
--
-- publish(job, task, files, ctx) -> item
-- files: {{name, size}} in the task's outputs. ctx: url(name) -> signed URL
-- of an output file; process_url, item_url (signed); expires, now (RFC 3339);
-- status (openEO status), options, title, description.
local M = {}

M.schema = {
  url_ttl = { type = "duration", default = 3600, min = 1, description = "how long signed URLs stay valid" },
  license = { type = "string", default = "proprietary" },
}

local TYPES = {
  json = "application/json", geojson = "application/geo+json", tif = "image/tiff; application=geotiff",
  tiff = "image/tiff; application=geotiff", nc = "application/x-netcdf", csv = "text/csv",
  txt = "text/plain", png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg",
}

local function media_type(name)
  local ext = name:match("%.([%w]+)$")
  return ext and TYPES[ext:lower()] or "application/octet-stream"
end

function M.publish(job, task, files, ctx)
  local assets = {}
  for _, f in ipairs(files) do
    assets[f.name] = {
      href = ctx.url(f.name),
      type = media_type(f.name),
      title = f.name,
      roles = { "data" },
      ["file:size"] = f.size,
    }
  end
  assets["process.json"] = {
    href = ctx.process_url,
    type = "application/json",
    title = "The process that computed these results",
    roles = { "reproducibility" },
  }
  local props = {
    datetime = ctx.null,
    created = job.created_at,
    updated = job.ended_at or job.updated_at,
    expires = ctx.expires,
    ["openeo:status"] = ctx.status,
    license = (ctx.options or {}).license or "proprietary",
  }
  if type(ctx.title) == "string" then props.title = ctx.title end
  if type(ctx.description) == "string" then props.description = ctx.description end
  return {
    stac_version = "1.0.0",
    stac_extensions = { "https://stac-extensions.github.io/file/v2.1.0/schema.json" },
    type = "Feature",
    id = job.id,
    geometry = ctx.null,
    properties = props,
    assets = assets,
    links = {
      { rel = "canonical", href = ctx.item_url, type = "application/json" },
    },
  }
end

return M
