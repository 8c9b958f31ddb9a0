-- An approval policy for the structured-log end-to-end test: it accepts
-- every job and says so in the log, so the test can find a line written
-- while the submitting request was being handled.
return {
  schema = {},
  approve = function(job, ctx)
    ctx.log("info", "noisy policy looked at " .. tostring(job.title))
    return "accept"
  end,
}
