-- Approval policy: accept a job only when every task's image matches one
-- of the patterns in the plugin's `images` option ("ubuntu*", "alpine");
-- a task without an image runs on "host". Anything else is rejected, with
-- the images named.
--
--   plugins:
--     images: {use: approve.image_allowlist, images: ["ubuntu*", host]}
--   surfaces:
--     native: {approval: [images]}

-- "ubuntu*" -> "^ubuntu.*$": only * is special.
local function pattern(glob)
  return "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

local M = {}

M.schema = {
  images = { type = "list", of = { type = "string" }, required = true,
    description = 'the image patterns allowed, e.g. ["ubuntu*", host]' },
}

function M.approve(job, ctx)
  local allowed = ctx.options.images
  if type(allowed) ~= "table" or #allowed == 0 then
    return "reject", "no images are allowed (the policy's images option is empty)"
  end
  local refused = {}
  for _, task in ipairs(job.tasks or {}) do
    local image = task.image or "host"
    local ok = false
    for _, glob in ipairs(allowed) do
      if image:match(pattern(glob)) then ok = true break end
    end
    if not ok then refused[#refused + 1] = string.format("%s (task %s)", image, tostring(task.alias)) end
  end
  if #refused > 0 then
    return "reject", "image not allowed: " .. table.concat(refused, ", ")
  end
  return "accept"
end

return M
