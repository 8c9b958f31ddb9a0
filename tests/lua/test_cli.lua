-- The command-line client's pieces that need no daemon: URL parsing
-- (jobrt.http_client), times, sizes, tables and progress (jobrt.cli_view),
-- and the manual page's roff (jobrt.manpage). The client against a daemon
-- is tests/e2e/cli_client.test.mjs.
local http = require("jobrt.http_client")
local manpage = require("jobrt.manpage")
local view = require("jobrt.cli_view")

return {
  { "URLs: scheme, host, port, path; bad ones named", function(t)
    t.eq(http.parse_url("http://127.0.0.1:8080/jobrt/v1/jobs?x=1"),
      { scheme = "http", host = "127.0.0.1", port = 8080, path = "/jobrt/v1/jobs?x=1" })
    t.eq(http.parse_url("HTTPS://example.org"), { scheme = "https", host = "example.org", port = 443, path = "" })
    t.eq(http.parse_url("http://[::1]:9/a#frag"), { scheme = "http", host = "::1", port = 9, path = "/a" })
    t.match(select(2, http.parse_url("ftp://x")), "only http:// and https://")
    t.match(select(2, http.parse_url("localhost:8080")), "is not a URL")
    t.match(select(2, http.parse_url("http://:80/")), "no host")
    t.match(select(2, http.parse_url("http://h:70000/")), "bad port")
  end },

  { "times: RFC 3339 to the epoch, durations, sizes", function(t)
    t.eq(view.epoch("1970-01-01T00:00:00Z"), 0)
    t.eq(view.epoch("2000-03-01T00:00:01.5Z"), 951868801.5)
    t.eq(view.epoch("2026-12-04T10:02:43.347Z") - view.epoch("2026-12-04T10:02:43.047Z") > 0.29, true)
    t.eq(view.epoch("yesterday"), nil)
    t.eq(view.duration(4.25), "4.2s")
    t.eq(view.duration(125), "2m05s")
    t.eq(view.duration(7322), "2h02m")
    t.eq(view.millis(15), "15ms")
    t.eq(view.bytes(1519616), "1.4MiB")
    t.eq(view.bytes(0), "-")
    t.eq(view.elapsed({ started_at = "2026-01-01T00:00:00Z", ended_at = "2026-01-01T00:00:03Z" }), 3)
    t.eq(view.elapsed({ started_at = "2026-01-01T00:00:00Z" }, view.epoch("2026-01-01T00:01:00Z")), 60)
  end },

  { "tables: aligned with a header on a terminal, tab-separated without one otherwise", function(t)
    local rows = { { "a", "running", "x\ty" }, { "bbb", nil, "a very long title indeed" } }
    t.eq(view.table(rows, { "ID", "STATE", "TITLE" }, false), "a\trunning\tx y\nbbb\t-\ta very long title indeed\n")
    t.eq(view.table(rows, { "ID", "STATE", "TITLE" }, true, { [3] = 10 }),
      "ID   STATE    TITLE\na    running  x y\nbbb  -        a very lo…\n")
    t.eq(view.table({}, { "ID" }, false), "")
  end },

  { "waiting: short in the list and the task table, in words in a job's fields", function(t)
    t.eq(view.reason(nil), nil)
    t.eq(view.reason({ reason = "Resources", resources = { "cpu", "memory" }, message = "m" }), "Resources (cpu, memory)")
    t.eq(view.reason({ reason = "Dependency", dependencies = { "a" }, message = "m" }), "Dependency (a)")
    t.eq(view.reason({ reason = "Priority", resources = { "cpu" }, behind = "J1", message = "m" }), "Priority")
    local held = { reason = "Approval", message = "awaiting approval (hold: later)" }
    local rows, header = view.job_rows({ { id = "J", state = "awaiting_approval", owner = "o", surface = "native",
      created_at = "T", title = "x", waiting = held }, { id = "K", state = "succeeded" } })
    t.eq(header[#header], "WAITING")
    t.eq(view.table(rows, header, false), "J\tawaiting_approval\to\tnative\tT\tx\tApproval\nK\tsucceeded\t-\t-\t-\t-\t-\n")
    local job = { id = "J", state = "queued", waiting = { reason = "Resources", resources = { "gpu" },
      message = "waits for the node's gpu to be free" },
      tasks = { { alias = "a", state = "ready", deps = {}, waiting = { reason = "Resources", resources = { "gpu" } } },
        { alias = "b", state = "pending", deps = { "a" }, waiting = { reason = "Dependency", dependencies = { "a" } } } } }
    local plain = view.job(job, false, 0)
    t.match(plain, "\nwaiting\tResources: waits for the node's gpu to be free\n")
    t.match(plain, "\ntask\ta\tready\t%-\t%-\t%-\t%-\t%-\t%-\t%-\tResources %(gpu%)\n")
    t.match(plain, "\ntask\tb\tpending\t%-\t%-\ta\t%-\t%-\t%-\t%-\tDependency %(a%)\n")
    t.match(view.job(job, true, 0), "WAITING")
  end },

  { "progress: tasks done of all, and the state", function(t)
    local job = { id = "J", state = "running", started_at = "2026-01-01T00:00:00Z",
      tasks = { { state = "succeeded" }, { state = "skipped" }, { state = "running" }, { state = "pending" } } }
    t.eq({ view.counts(job) }, { 2, 4 })
    t.eq(view.progress(job, view.epoch("2026-01-01T00:00:02.5Z")), "J  running  2/4 tasks done  2.5s")
    t.eq(view.FINAL.running, nil)
    t.eq(view.FINAL.rejected, true)
  end },

  { "roff: escapes, sections per command, verbatim blocks", function(t)
    local page = manpage.render({ version = "1.2", commands = {
      { usage = "x --flag", summary = "does x", help = ".dot starts it\nback\\slash\n\n  -a  an option\n  -b  another" },
    } })
    t.match(page, '^%.TH JOBRT 1 "" "jobrt 1%.2"')
    t.match(page, "\n%.SS jobrt x \\%-\\%-flag\ndoes x\n", "the usage as a heading")
    t.match(page, "\n%.PP\n\\&%.dot starts it back\\eslash\n", "a paragraph; a leading dot guarded")
    t.match(page, "%.nf\n\\%-a  an option\n\\%-b  another\n%.fi", "indented lines kept as they are")
  end },
}
