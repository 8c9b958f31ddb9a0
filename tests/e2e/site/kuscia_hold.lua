-- An approval policy for the Kuscia end-to-end tests: a job with a label
-- (a Kuscia custom_field) whose value is "hold" waits in AwaitingApproval
-- for the approve call, one with the value "refuse" is rejected by the
-- policy itself, any other job is accepted. Keyed on values so it does not
-- depend on how the surface names the labels it makes of custom_fields.
return {
  schema = {},
  approve = function(job)
    local labels = type(job.labels) == "table" and job.labels or {}
    for _, v in pairs(labels) do
      if v == "refuse" then return "reject", "the site refuses jobs marked refuse" end
    end
    for _, v in pairs(labels) do
      if v == "hold" then return "wait", "held for a Kuscia approve call" end
    end
    return "accept"
  end,
}
