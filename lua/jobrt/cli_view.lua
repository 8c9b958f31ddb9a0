-- How the command-line client shows things: aligned tables with a header
-- for a terminal, tab-separated rows without one (nothing cut) for pipes,
-- durations, sizes, and the one-line progress of a job.
local M = {}

local DONE = { succeeded = true, failed = true, canceled = true, skipped = true }
-- Job states after which nothing happens without someone asking.
M.FINAL = { succeeded = true, failed = true, canceled = true, rejected = true, suspended = true }

-- "2026-12-04T10:02:43.347Z" -> seconds since the epoch (UTC), or nil.
function M.epoch(iso)
  if type(iso) ~= "string" then return nil end
  local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d.]+)")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- Days from the civil date (proleptic Gregorian), as in Howard Hinnant's algorithm.
  if mo <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

function M.duration(seconds)
  if type(seconds) ~= "number" then return "-" end
  if seconds < 60 then return string.format("%.1fs", seconds) end
  if seconds < 3600 then return string.format("%dm%02ds", seconds // 60, math.floor(seconds % 60)) end
  return string.format("%dh%02dm", seconds // 3600, math.floor(seconds % 3600) // 60)
end

function M.millis(ms)
  if type(ms) ~= "number" then return "-" end
  if ms < 1000 then return string.format("%dms", ms) end
  return M.duration(ms / 1000)
end

function M.bytes(n)
  if type(n) ~= "number" or n <= 0 then return "-" end
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  return i == 1 and string.format("%d%s", n, units[i]) or string.format("%.1f%s", n, units[i])
end

-- The time a job (or task) has run: to its end, or to now.
function M.elapsed(thing, now)
  local started = M.epoch(thing.started_at)
  if not started then return nil end
  return (M.epoch(thing.ended_at) or now) - started
end

-- done, total: tasks that reached a final state, of all.
function M.counts(job)
  local done, total = 0, 0
  for _, t in ipairs(job.tasks or {}) do
    total = total + 1
    if DONE[t.state] then done = done + 1 end
  end
  return done, total
end

-- "ID  running  1/3 tasks done  4.2s"
function M.progress(job, now)
  local done, total = M.counts(job)
  return string.format("%s  %s  %d/%d tasks done  %s", job.id, job.state, done, total,
    M.duration(M.elapsed(job, now) or 0))
end

local function cell(v)
  if v == nil then return "-" end
  v = tostring(v)
  return v == "" and "-" or v
end

local function width(s)
  return utf8.len(s) or #s
end

-- table(rows, header, tty[, cut]) -> text. rows are lists of values; cut
-- maps a column index to the widest it may be on a terminal.
function M.table(rows, header, tty, cut)
  local out = {}
  if not tty then
    for _, r in ipairs(rows) do
      local cells = {}
      for i = 1, #header do cells[i] = cell(r[i]):gsub("[\t\n]", " ") end
      out[#out + 1] = table.concat(cells, "\t")
    end
    return #out > 0 and table.concat(out, "\n") .. "\n" or ""
  end
  local all = { header }
  for _, r in ipairs(rows) do
    local cells = {}
    for i = 1, #header do
      local c = cell(r[i]):gsub("[\t\n]", " ")
      local max = cut and cut[i]
      if max and width(c) > max then
        c = c:sub(1, (utf8.offset(c, max) or (max + 1)) - 1) .. "…"
      end
      cells[i] = c
    end
    all[#all + 1] = cells
  end
  local widths = {}
  for _, r in ipairs(all) do
    for i, c in ipairs(r) do widths[i] = math.max(widths[i] or 0, width(c)) end
  end
  for _, r in ipairs(all) do
    local line = {}
    for i, c in ipairs(r) do
      line[i] = i < #r and (c .. string.rep(" ", widths[i] - width(c))) or c
    end
    out[#out + 1] = table.concat(line, "  ")
  end
  return table.concat(out, "\n") .. "\n"
end

-- Why a job or task waits, short: "Resources (cpu, memory)",
-- "Dependency (a, b)", "Priority"; nil when it does not wait.
function M.reason(w)
  if type(w) ~= "table" or type(w.reason) ~= "string" then return nil end
  local detail = w.reason == "Resources" and w.resources or w.reason == "Dependency" and w.dependencies
  if type(detail) == "table" and #detail > 0 then
    return string.format("%s (%s)", w.reason, table.concat(detail, ", "))
  end
  return w.reason
end

-- The job list's rows: WAITING last, so the columns before it keep their place.
function M.job_rows(jobs)
  local rows = {}
  for _, j in ipairs(jobs) do
    rows[#rows + 1] = { j.id, j.state, j.owner, j.surface, j.created_at, j.title, M.reason(j.waiting) }
  end
  return rows, { "ID", "STATE", "OWNER", "SURFACE", "CREATED", "TITLE", "WAITING" }, { [6] = 40 }
end

local function deps(t)
  local d = t.deps or {}
  return #d > 0 and table.concat(d, ",") or "-"
end

-- A job with its tasks, as `jobs show` prints it.
function M.job(job, tty, now)
  local fields = {
    { "id", job.id }, { "title", job.title }, { "state", job.state }, { "owner", job.owner },
    { "surface", job.surface }, { "created", job.created_at }, { "started", job.started_at },
    { "ended", job.ended_at }, { "elapsed", M.elapsed(job, now) and M.duration(M.elapsed(job, now)) },
  }
  if type(job.waiting) == "table" then
    fields[#fields + 1] = { "waiting", string.format("%s: %s", tostring(job.waiting.reason),
      tostring(job.waiting.message or "")) }
  end
  if job.error then fields[#fields + 1] = { "error", job.error } end
  if type(job.approval) == "table" then
    fields[#fields + 1] = { "approval", string.format("%s by %s%s", tostring(job.approval.decision),
      tostring(job.approval.by), job.approval.reason and (": " .. job.approval.reason) or "") }
  end
  local text = M.table(fields, { "", "" }, tty)
  if tty then text = text:gsub("^[^\n]*\n", "") end -- no header for the fields
  local rows = {}
  for _, t in ipairs(job.tasks or {}) do
    local u = t.usage or {}
    rows[#rows + 1] = { t.alias, t.state, t.outcome, t.exit_code, deps(t), M.millis(u.cpu_ms),
      M.millis(u.wall_ms), M.bytes(u.max_rss_bytes), t.error, M.reason(t.waiting) }
  end
  local header = { "TASK", "STATE", "OUTCOME", "EXIT", "DEPS", "CPU", "WALL", "MAX RSS", "ERROR", "WAITING" }
  if tty then return text .. "\n" .. M.table(rows, header, true, { [9] = 60 }) end
  for i, r in ipairs(rows) do
    table.insert(r, 1, "task")
    rows[i] = r
  end
  table.insert(header, 1, "")
  return text .. M.table(rows, header, false)
end

-- A log entry as a line: "TIME task [level] message".
function M.log_line(entry, tty)
  local level = entry.level ~= "info" and ("[" .. tostring(entry.level) .. "] ") or ""
  if not tty then
    return table.concat({ cell(entry.time), cell(entry.task), cell(entry.level),
      (tostring(entry.message or ""):gsub("\n", " ")) }, "\t") .. "\n"
  end
  local time = tostring(entry.time or ""):match("T([%d:]+)") or "-"
  return string.format("%s %s: %s%s\n", time, entry.task or "job", level, tostring(entry.message or ""))
end

-- An event of the stream as a line.
function M.event_line(ev, tty)
  local what = ev.type == "task" and ("task " .. tostring(ev.task)) or tostring(ev.type or "?")
  if not tty then
    return table.concat({ cell(ev.seq), cell(ev.time), cell(ev.job), cell(ev.type), cell(ev.task),
      cell(ev.state), cell(ev.message) }, "\t") .. "\n"
  end
  local time = tostring(ev.time or ""):match("T([%d:]+)") or "-"
  return string.format("%s  %s  %-16s %-18s %s\n", time, cell(ev.job), what, cell(ev.state),
    ev.message and tostring(ev.message) or "")
end

return M
