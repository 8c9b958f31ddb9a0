-- Approval policy: every job waits in awaiting_approval until someone
-- with the admin role approves or rejects it (POST .../approve).
--
--   plugins:
--     review: {use: approve.manual}
--   surfaces:
--     native: {approval: [review]}
return {
  schema = {}, -- no options
  approve = function(job)
    return "wait", "waiting for an administrator to approve " .. tostring(job.title or "the job")
  end,
}
