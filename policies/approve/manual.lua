-- Approval policy: every job waits in awaiting_approval until someone
-- approves or rejects it (POST .../approve): an administrator, or a user
-- with one of the `roles` given (e.g. approver).
--
--   plugins:
--     review: {use: approve.manual, roles: [approver]}
--   surfaces:
--     native: {approval: [review]}
local M = {}

M.schema = {
  roles = { type = "list", of = { type = "string", one_of = { "admin", "approver", "user" } }, default = {},
    description = "roles besides admin that may approve or reject the jobs this policy holds" },
}

function M.approve(job, ctx)
  local roles = ctx and ctx.options and ctx.options.roles or {}
  local who = "an administrator"
  if #roles > 0 then who = who .. " or a user with the role " .. table.concat(roles, " or ") end
  return "wait", "waiting for " .. who .. " to approve " .. tostring(job.title or "the job")
end

return M
