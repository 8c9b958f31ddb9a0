-- An approval policy for the Bacalhau end-to-end tests: a job whose labels
-- (Bacalhau's Annotations) have "hold" waits for an approver, one with
-- "refuse" is rejected, any other is accepted.
return {
  schema = {},
  approve = function(job)
    local labels = type(job.labels) == "table" and job.labels or {}
    if labels.refuse then return "reject", "the site refuses jobs annotated refuse" end
    if labels.hold then return "wait", "held for a Bacalhau approver" end
    return "accept"
  end,
}
