-- Jobs that waited for their images' pulls when the last daemon stopped (a
-- kill -9 included). Such a job is stored in state created with, as its
-- first log line, the names it waits for (data.pulling), both in one
-- transaction (jobrt.submit's pull_then_start). At start-up every created
-- job is looked at: one whose mark is there and not older than its last
-- start goes back to its surface's pipeline (resume_pulls), which pulls
-- again what is not in the store (the partial downloads the last daemon
-- left are resumed) and then starts the job, or fails it with the pull's
-- error.
local M = {}

local PAGE, PAGES = 200, 500
-- The mark is the job's first log line; a few more allow for lines a
-- surface may add at submit.
local MARK_LINES = 5

-- The names job row waits for, or nil.
function M.marked(core, row)
  local logs = core.logs(row.id, { limit = MARK_LINES })
  for _, l in ipairs(logs or {}) do
    local names = type(l.data) == "table" and l.data.pulling
    if type(names) == "table" and #names > 0 then
      -- A job started since (and set back to created later) is done with it.
      if row.started_at and l.time and row.started_at >= l.time then return nil end
      local out = {}
      for i, n in ipairs(names) do
        if type(n) ~= "string" then return nil end
        out[i] = n
      end
      return out
    end
  end
  return nil
end

--- resume(core, pipeline_of, log) -> count: each created job that waited
-- for pulls is handed to pipeline_of(surface):resume_pulls. log(level,
-- message) says what was resumed or could not be.
function M.resume(core, pipeline_of, log)
  local after, count = nil, 0
  for _ = 1, PAGES do
    local page = core.list({ state = "created", limit = PAGE, after = after })
    if not page then break end
    for _, row in ipairs(page.jobs) do
      local names = M.marked(core, row)
      if names then
        local pipeline = pipeline_of(row.surface)
        if pipeline then
          count = count + 1
          pipeline:resume_pulls(row.id, names)
        else
          log("warn", string.format("job %s waited for image pulls, but its surface %s is not"
            .. " mounted: it stays created", row.id, tostring(row.surface)))
        end
      end
    end
    if not page.next then break end
    after = page.next
  end
  if count > 0 then
    log("info", string.format("resumed %d job%s waiting for image pulls", count, count == 1 and "" or "s"))
  end
  return count
end

return M
