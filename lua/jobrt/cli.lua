-- The command-line client (`jobrt login`, `jobrt jobs ...`): talks to a
-- daemon's native API over HTTP (jobrt.http_client). The URL and token come
-- from --url and JOBRT_TOKEN, else from the credentials file `jobrt login`
-- writes (mode 0600). Exit codes follow the job (see EXIT_CODES below).
local credentials = require("jobrt.credentials")
local http = require("jobrt.http_client")
local json = require("jobrt.json")
local uv = require("luv")
local view = require("jobrt.cli_view")

local M = {}

local API = "/jobrt/v1"
local DEFAULT_URL = "http://127.0.0.1:8080"

M.EXIT_CODES = [[
Exit codes: 0 done (with --wait or logs -f: the job succeeded); 1 the job
failed, or the daemon refused the request (the message says why); 2 a usage
error; 3 the job was canceled, rejected or suspended; 4 the daemon cannot be
reached or did not accept the credentials (401, 403).]]

-- A failure that ends the command with an exit code.
local Exit = {}
Exit.__index = Exit

local function exit_with(code, fmt, ...)
  error(setmetatable({ code = code, message = string.format(fmt, ...) }, Exit), 0)
end

local function usage(fmt, ...) exit_with(2, fmt, ...) end

---------------------------------------------------------------------------
-- Options

-- parse(args, first, spec) -> opts, positional. spec maps "--name" (and
-- short aliases) to {key, flag = true} for switches or {key} for options
-- that take a value ("--name V" or "--name=V").
local function parse(args, first, spec)
  local opts, rest = {}, {}
  local i = first
  while i <= #args do
    local a = args[i]
    local name, value = a:match("^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    local s = spec[name]
    if s then
      if s.flag then
        if value ~= nil then usage("option %s takes no value", name) end
        opts[s[1]] = true
      else
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then usage("option %s needs a value", name) end
        end
        opts[s[1]] = value
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage("unknown option %s", a)
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

---------------------------------------------------------------------------
-- Credentials

local function trim_url(url)
  url = url:gsub("/+$", "")
  return (url:gsub(API .. "$", ""))
end

-- The daemon to talk to and the token to send. The file's token goes only
-- to the file's URL.
local function session(opts)
  local file = credentials.read()
  local url = opts.url or os.getenv("JOBRT_URL")
  url = trim_url(url or file.url or DEFAULT_URL)
  local ok, err = http.parse_url(url)
  if not ok then usage("--url: %s", err) end
  local token = os.getenv("JOBRT_TOKEN")
  local same = trim_url(file.url or "") == url
  if (token == nil or token == "") and file.token and same then
    token = file.token
  end
  -- A client certificate for mutual TLS: JOBRT_CERT and JOBRT_KEY, else
  -- what login kept for this URL.
  local cert, key = os.getenv("JOBRT_CERT"), os.getenv("JOBRT_KEY")
  if (cert == nil or cert == "") and same then cert, key = file.cert, file.key end
  if cert == "" then cert = nil end
  return {
    url = url,
    token = token ~= "" and token or nil,
    cert = cert,
    key = (key ~= nil and key ~= "") and key or cert,
    json = opts.json,
    tty = uv.guess_handle(1) == "tty",
    err_tty = uv.guess_handle(2) == "tty",
  }
end

---------------------------------------------------------------------------
-- Requests

local function query(params)
  local parts = {}
  for _, kv in ipairs(params) do
    if kv[2] ~= nil then
      local v = tostring(kv[2]):gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end)
      parts[#parts + 1] = kv[1] .. "=" .. v
    end
  end
  return #parts > 0 and ("?" .. table.concat(parts, "&")) or ""
end

-- A job id as one path segment.
local function seg(id)
  return (tostring(id):gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function refused(s, status, body)
  local b = json.decode(body or "")
  local msg = type(b) == "table" and b.message or ((body or ""):sub(1, 200))
  local code = type(b) == "table" and b.code or ("HTTP " .. status)
  if status == 401 or status == 403 then
    exit_with(4, "%s refused the request (%s): %s%s", s.url, tostring(code), tostring(msg),
      status == 401 and "; run jobrt login, or set JOBRT_TOKEN" or "")
  end
  exit_with(1, "%s: %s", tostring(code), tostring(msg))
end

-- call(s, method, path[, body[, opts]]) -> decoded answer (nil for 204).
-- Any failure ends the command: 4 unreachable or refused credentials,
-- 1 any other refusal.
local function call(s, method, path, body, opts)
  opts = opts or {}
  local headers = { Authorization = opts.authorization or (s.token and ("Bearer " .. s.token)) }
  local text
  if body ~= nil then
    text = json.encode(body)
    headers["Content-Type"] = "application/json"
  end
  local res, err = http.request({
    method = method, url = s.url .. API .. path, headers = headers, body = text,
    timeout = opts.timeout, on_data = opts.on_data, cert = s.cert, key = s.key,
  })
  if not res then exit_with(4, "cannot reach %s: %s", s.url, err) end
  if res.status < 200 or res.status >= 300 then refused(s, res.status, res.body) end
  if opts.on_data or res.body == "" then return nil end
  local v, derr = json.decode(res.body)
  if v == nil then exit_with(1, "the answer of %s %s is not JSON: %s", method, path, derr) end
  return v
end

local function out(text) io.stdout:write(text) end

local function print_json(v) out(json.encode(v) .. "\n") end

local function sleep(seconds) require("jobrt.async").sleep(seconds) end

local function now()
  local sec, usec = uv.gettimeofday()
  return sec + usec / 1e6
end

-- The exit code a job's final state stands for.
local function job_exit(job)
  if job.state == "succeeded" then return 0 end
  if job.state == "failed" then return 1 end
  return 3
end

---------------------------------------------------------------------------
-- Progress: a line redrawn on a terminal (standard error), plain lines
-- when something changed otherwise.

local Progress = {}
Progress.__index = Progress

local function progress(s) return setmetatable({ tty = s.err_tty, shown = false, last = nil }, Progress) end

function Progress:show(job)
  local line = view.progress(job, now())
  if self.tty then
    io.stderr:write("\r\27[K", line)
    self.shown = true
  else
    local done = view.counts(job)
    local key = job.state .. "/" .. done
    if key ~= self.last then io.stderr:write(os.date("!%H:%M:%S "), line, "\n") end
    self.last = key
  end
  io.stderr:flush()
end

-- Clears the redrawn line before other output.
function Progress:clear()
  if self.tty and self.shown then
    io.stderr:write("\r\27[K")
    self.shown = false
  end
end

function Progress:done(job)
  self:show(job)
  if self.tty then
    io.stderr:write("\n")
    self.shown = false
  end
end

-- Polls the job until it reaches a final state; returns it.
local function wait_job(s, id)
  local p = progress(s)
  local pause = 0.2
  while true do
    local job = call(s, "GET", "/jobs/" .. seg(id))
    if view.FINAL[job.state] then
      p:done(job)
      return job
    end
    p:show(job)
    sleep(pause)
    pause = math.min(pause * 1.5, 1)
  end
end

---------------------------------------------------------------------------
-- Commands

local function read_job_file(path)
  local text, err
  if path == "-" then
    text = io.stdin:read("a")
  else
    local f
    f, err = io.open(path, "rb")
    if not f then exit_with(1, "%s", err) end
    text = f:read("a")
    f:close()
  end
  local doc
  if path:match("%.json$") or (path == "-" and text:match("^%s*[{%[]")) then
    doc, err = json.decode(text)
    if doc == nil then exit_with(1, "%s: %s", path, err) end
  else
    doc, err = require("jobrt.yaml").load_string(text, path)
    if doc == nil then exit_with(1, "%s", err) end
    -- YAML maps and sequences as JSON; empty ones say nothing and are left out.
    local function convert(v)
      if type(v) == "userdata" then return json.null end
      if type(v) ~= "table" then return v end
      if next(v) == nil then return nil end
      local n = #v
      local is_seq = n > 0
      for k in pairs(v) do
        if math.type(k) ~= "integer" or k < 1 or k > n then is_seq = false end
      end
      local c = is_seq and json.array({}) or json.object({})
      for k, x in pairs(v) do c[k] = convert(x) end
      return c
    end
    doc = convert(doc)
  end
  if type(doc) ~= "table" or json.is_array(doc) then
    exit_with(1, "%s: a job is an object with tasks (see jobrt help jobs)", path)
  end
  return doc
end

local function one_id(rest, what)
  if #rest ~= 1 then usage("%s needs one job ID", what) end
  return rest[1]
end

local SUB = {}

function SUB.submit(s, opts, rest)
  if #rest ~= 1 then usage("submit needs one FILE (.json, .yaml, or - for standard input)") end
  local doc = read_job_file(rest[1])
  if doc.start == nil then doc.start = not opts.hold end
  local job = call(s, "POST", "/jobs", doc)
  if not opts.wait then
    if s.json then print_json(job) else out(s.tty and ("submitted " .. job.id .. " (" .. job.state .. ")\n") or (job.id .. "\n")) end
    return 0
  end
  if not s.json and not s.tty then out(job.id .. "\n") end
  io.stdout:flush()
  job = wait_job(s, job.id)
  if s.json then print_json(job) elseif s.tty then out(view.job(job, true, now())) end
  return job_exit(job)
end

function SUB.list(s, opts, rest)
  if #rest > 0 then usage("list takes no arguments") end
  local limit = opts.limit and tonumber(opts.limit)
  if opts.limit and (not limit or limit < 1 or math.type(limit) ~= "integer") then
    usage("--limit: must be a whole number above 0")
  end
  local jobs, after = {}, nil
  repeat
    local page = call(s, "GET", "/jobs" .. query({ { "state", opts.state }, { "surface", opts.surface },
      { "owner", opts.owner }, { "limit", limit or 100 }, { "after", after } }))
    for _, j in ipairs(page.jobs or {}) do jobs[#jobs + 1] = j end
    after = page.next
  until not after or after == json.null or (limit and #jobs >= limit)
  if s.json then
    print_json(json.array(jobs))
  else
    local rows, header, cut = view.job_rows(jobs)
    out(view.table(rows, header, s.tty, cut))
  end
  return 0
end

function SUB.show(s, _, rest)
  local job = call(s, "GET", "/jobs/" .. seg(one_id(rest, "show")))
  if s.json then print_json(job) else out(view.job(job, s.tty, now())) end
  return 0
end

-- The log entries after `after`, printed; returns the new cursor.
local function print_logs(s, id, after, task, p)
  while true do
    local page = call(s, "GET", "/jobs/" .. seg(id) .. "/logs" .. query({ { "after", after }, { "limit", 1000 } }))
    local logs = page.logs or {}
    if #logs > 0 and p then p:clear() end
    for _, e in ipairs(logs) do
      if not task or e.task == task then
        if s.json then print_json(e) else out(view.log_line(e, s.tty)) end
      end
      after = e.id
    end
    io.stdout:flush()
    if #logs < 1000 then return after end
  end
end

function SUB.logs(s, opts, rest)
  local id = one_id(rest, "logs")
  if not opts.follow then
    call(s, "GET", "/jobs/" .. seg(id)) -- a missing job says so, not "no logs"
    print_logs(s, id, nil, opts.task)
    return 0
  end
  local p = progress(s)
  p.tty = p.tty and not s.json
  local after
  local pause = 0.2
  while true do
    local job = call(s, "GET", "/jobs/" .. seg(id))
    after = print_logs(s, id, after, opts.task, p)
    if view.FINAL[job.state] then
      -- Lines written before the end are stored with it: one more read has them all.
      print_logs(s, id, after, opts.task, p)
      p:done(job)
      return job_exit(job)
    end
    if p.tty then p:show(job) end
    sleep(pause)
    pause = math.min(pause * 1.5, 1)
  end
end

local function transition(op, body_of)
  return function(s, opts, rest)
    local id = one_id(rest, op)
    local path, body = body_of(id, opts)
    local job = call(s, "POST", path, body)
    if s.json then print_json(job) else out(s.tty and string.format("%s: %s\n", job.id, job.state) or (job.id .. "\t" .. job.state .. "\n")) end
    return 0
  end
end

SUB.cancel = transition("cancel", function(id, o) return "/jobs/" .. seg(id) .. "/cancel", o.reason and { reason = o.reason } or nil end)
SUB.restart = transition("restart", function(id) return "/jobs/" .. seg(id) .. "/restart" end)
SUB.approve = transition("approve", function(id, o) return "/jobs/" .. seg(id) .. "/approve", { accept = true, reason = o.reason } end)
SUB.reject = transition("reject", function(id, o) return "/jobs/" .. seg(id) .. "/approve", { accept = false, reason = o.reason } end)

function SUB.watch(s, opts, rest)
  if #rest > 0 then usage("watch takes no arguments") end
  local after = opts.after
  if after and not tostring(after):match("^%d+$") then usage("--after: must be an event number") end
  local pending = ""
  call(s, "GET", "/events" .. query({ { "after", after } }), nil, {
    timeout = 60, -- the stream sends a blank line every 15 s
    on_data = function(chunk)
      pending = pending .. chunk
      while true do
        local line, tail = pending:match("^([^\n]*)\n(.*)$")
        if not line then break end
        pending = tail
        if line ~= "" then
          if s.json then
            out(line .. "\n")
          else
            local ev = json.decode(line)
            if type(ev) == "table" then out(view.event_line(ev, s.tty)) end
          end
          io.stdout:flush()
        end
      end
    end,
  })
  return 0
end

local COMMON = {
  ["--url"] = { "url" }, ["--json"] = { "json", flag = true },
}

local SPECS = {
  submit = { ["--wait"] = { "wait", flag = true }, ["-w"] = { "wait", flag = true }, ["--hold"] = { "hold", flag = true } },
  list = { ["--state"] = { "state" }, ["--surface"] = { "surface" }, ["--owner"] = { "owner" }, ["--limit"] = { "limit" } },
  show = {},
  logs = { ["-f"] = { "follow", flag = true }, ["--follow"] = { "follow", flag = true }, ["--task"] = { "task" } },
  cancel = { ["--reason"] = { "reason" } },
  restart = {},
  approve = { ["--reason"] = { "reason" } },
  reject = { ["--reason"] = { "reason" } },
  watch = { ["--after"] = { "after" } },
}

local function with_common(spec)
  local all = {}
  for k, v in pairs(COMMON) do all[k] = v end
  for k, v in pairs(spec) do all[k] = v end
  return all
end

local function jobs(args)
  local sub = args[2]
  if sub == nil then usage("jobs needs a subcommand: submit, list, show, logs, cancel, restart, approve, reject, watch") end
  if not SUB[sub] then usage("unknown jobs subcommand %s", sub) end
  local opts, rest = parse(args, 3, with_common(SPECS[sub]))
  return SUB[sub](session(opts), opts, rest)
end

local function prompt(text, secret)
  local tty = uv.guess_handle(0) == "tty"
  if secret then return require("jobrt.auth").read_password(text, tty) end
  if tty then io.stderr:write(text) end
  local line = io.stdin:read("l")
  return line and line:gsub("\r$", "") or nil
end

local function login(args)
  local opts, rest = parse(args, 2, {
    ["--url"] = { "url" }, ["--user"] = { "user" }, ["--token"] = { "token" }, ["--ttl"] = { "ttl" },
    ["--cert"] = { "cert" }, ["--key"] = { "key" },
  })
  if #rest > 0 then usage("unexpected argument %s", rest[1]) end
  if opts.token and opts.user then usage("give --token or --user, not both") end
  if opts.key and not opts.cert then usage("--key goes with --cert") end
  local s = session(opts)
  s.token = nil
  -- Kept as absolute paths: the next command may run elsewhere.
  local function absolute(p) return p and (p:sub(1, 1) == "/" and p or (uv.cwd() .. "/" .. p)) or nil end
  if opts.cert then s.cert, s.key = absolute(opts.cert), absolute(opts.key or opts.cert) end
  local c = { url = s.url, cert = s.cert, key = s.cert and s.key or nil }
  if opts.token then
    s.token = opts.token
    call(s, "GET", "/jobs?limit=1") -- refused (exit 4) when the token is not valid
    c.token = opts.token
  else
    local user = opts.user or prompt("user: ")
    if not user or user == "" then usage("no user given (--user NAME, or type it)") end
    local password = prompt("password: ", true)
    if not password then usage("no password given on standard input") end
    local basic = "Basic " .. require("jobrt.crypto").base64_encode(user .. ":" .. password)
    local t = call(s, "POST", "/tokens", opts.ttl and { ttl = opts.ttl } or nil, { authorization = basic })
    c.user, c.token, c.expires_at = user, t.token, t.expires_at
  end
  local path, err = credentials.write(c)
  if not path then exit_with(1, "cannot write the credentials: %s", err) end
  io.stderr:write("logged in to ", s.url, c.expires_at and (" until " .. c.expires_at) or "",
    "; credentials in ", path, "\n")
  return 0
end

-- run("login" | "jobs", args) -> exit code. Call it from a coroutine.
function M.run(name, args)
  local ok, code = pcall(name == "login" and login or jobs, args)
  if ok then return code end
  if getmetatable(code) ~= Exit then
    io.stderr:write("jobrt ", name, ": ", tostring(code), "\n")
    return 1
  end
  io.stderr:write("jobrt ", name, ": ", code.message, "\n")
  if code.code == 2 then io.stderr:write("(jobrt help ", name, " explains it)\n") end
  return code.code
end

M.help = {
  login = {
    usage = "login [--url URL] [--user NAME | --token TOKEN] [--ttl DURATION] [--cert FILE --key FILE]",
    summary = "sign in to a daemon; keeps a token for the jobs commands",
    help = [[
Asks the daemon at URL (default http://127.0.0.1:8080, or JOBRT_URL) for a
bearer token with a user name and password (asked on the terminal, or read
as two lines from standard input), or checks the --token given, and writes
~/.config/jobrt/credentials ($XDG_CONFIG_HOME/jobrt when set) with the URL
and the token, readable by you only (mode 0600). --ttl sets how long the
token lasts (e.g. 30d; the daemon's default is 24h). An https URL is
verified against the system's CA store, or the PEM file JOBRT_CA_FILE;
--cert and --key (PEM files, kept in the credentials file) are the client
certificate a mutual-TLS listener asks for (JOBRT_CERT and JOBRT_KEY
override them).

]] .. M.EXIT_CODES },
  jobs = {
    usage = "jobs SUBCOMMAND [--url URL] [--json] ...",
    summary = "submit, list, follow and control jobs on a daemon",
    help = [[
Talks to the daemon's native API. The URL, token and client certificate
are those jobrt login kept; --url (or JOBRT_URL), JOBRT_TOKEN, JOBRT_CERT
and JOBRT_KEY override them (what was kept is sent only to the kept URL).

  jobs submit FILE [--wait] [--hold]  submit a job (.json, .yaml, or - for
                                      standard input; started unless --hold
                                      or the file says "start": false)
  jobs list [--state S] [--surface S] [--owner O] [--limit N]
  jobs show ID                        the job and its tasks
  jobs logs ID [-f] [--task ALIAS]    log lines; -f follows until the job ends
  jobs cancel ID [--reason R]
  jobs restart ID
  jobs approve ID [--reason R]        (admin)
  jobs reject ID [--reason R]         (admin)
  jobs watch [--after N]              the event stream, as it happens (admin)

On a terminal answers are tables, and --wait and logs -f redraw a progress
line (state, tasks done/total, elapsed) on standard error. When standard
output is not a terminal, rows are tab-separated without a header and
nothing is cut; progress goes to standard error as one line per change, and
submit prints the job's ID first. --json prints the API's JSON instead (one
object per line for logs and watch).

]] .. M.EXIT_CODES },
}

return M
