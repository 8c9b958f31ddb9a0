-- Approval policy: an owner may have at most `max_active` jobs queued or
-- running at once (default 10), counted across every surface through the
-- policy's read-only view of the core. A start beyond that is rejected,
-- or held for an administrator with `over: wait`.
--
--   plugins:
--     quota: {use: approve.quota, max_active: 4, over: reject}
--   surfaces:
--     native: {approval: [quota]}
local M = {}

M.schema = {
  max_active = { type = "integer", default = 10, min = 0,
    description = "jobs an owner may have queued or running at once" },
  over = { type = "string", one_of = { "reject", "wait" }, default = "reject",
    description = "what becomes of a job beyond the quota" },
}

function M.approve(job, ctx)
  local max = ctx.options.max_active or 10
  local owner = job.owner
  if type(owner) ~= "string" or owner == "" then return "accept" end
  local active, err = ctx.core.count({ owner = owner, state = { "queued", "running" } })
  if not active then error("cannot count the jobs of " .. owner .. ": " .. tostring(err)) end
  if active < max then return "accept" end
  local why = string.format("%s has %d jobs queued or running (the quota is %d)", owner, active, max)
  if ctx.options.over == "wait" then return "wait", why end
  return "reject", why
end

return M
