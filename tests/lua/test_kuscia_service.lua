-- The Kuscia routes through the request pipeline (jobrt.server with a real
-- core and authenticator, exchanges recorded in memory): the Token check,
-- HTTP 200 with status.code for every handled request, and each control
-- operation's rules and codes on real jobs.
local config = require("jobrt.config")
local server = require("jobrt.server")
local auth_mod = require("jobrt.auth")
local core = require("jobrt.core")
local json = require("jobrt.json")

local function setup(t, extra)
  local dir = os.tmpname()
  os.remove(dir)
  local cfg = assert(config.from_string(table.concat({
    "data_dir: " .. dir,
    "node: {cpu: 2, max_tasks: 8}",
    "users:",
    "  ops: {password: ops-pw, roles: [admin]}",
    "  al: {password: al-pw, roles: [user]}",
    "surfaces:",
    "  native: false",
    "  openeo: false",
    "  bacalhau: false",
    "  kuscia:",
    "    tokens: [tok-1]",
    "    domains: [alice, bob]",
    "    app_images:",
    "      quick: {command: ['true']}",
    "      sleeper: {command: [sleep, '30']}",
    extra or "",
  }, "\n") .. "\n", "t.yaml"))
  cfg.kill_grace = 1
  assert(core.open(cfg))
  local auth = assert(auth_mod.new(cfg))
  local app = assert(server.new(cfg, config.loader(cfg), { auth = auth }))
  t.cleanup = function()
    core.close()
    os.execute("rm -rf '" .. dir .. "'")
  end
  return app, auth
end

-- One request through app:handle; -> {code, headers, body}.
local function call(t, app, path, body, headers, method, tls)
  local out, finished = { body = "" }, false
  local exchange = {
    respond = function(_, code, hdrs, b)
      out.code, out.headers, out.body = code, hdrs, b or ""
      finished = true
    end,
    start = function(_, code, hdrs) out.code, out.headers = code, hdrs end,
    write = function(_, chunk)
      out.body = out.body .. chunk
      return true
    end,
    finish = function() finished = true end,
    alive = function() return not finished end,
  }
  local hs = {}
  for k, v in pairs(headers or { Token = "tok-1" }) do hs[k:lower()] = v end
  app:handle({ method = method or "POST", path = "/api/v1/job" .. path, target = "/api/v1/job" .. path,
               query_string = "", headers = hs, body = body or "", tls = tls }, exchange)
  for _ = 1, 1500 do
    if finished then break end
    t.sleep(10)
  end
  t.ok(finished, "answered: " .. path)
  return out
end

-- A handled request: HTTP 200, JSON; -> the decoded answer.
local function api(t, app, path, doc, headers)
  local r = call(t, app, path, type(doc) == "string" and doc or json.encode(doc), headers)
  t.eq(r.code, 200, path .. " " .. r.body)
  t.eq(r.headers and r.headers["Content-Type"], "application/json; charset=utf-8", path)
  return json.decode(r.body) or {}
end

local function code_of(t, app, path, doc)
  local a = api(t, app, path, doc)
  return a.status and a.status.code, a.status and a.status.message
end

local function state_of(t, app, id)
  local a = api(t, app, "/query", { job_id = id })
  return a.data and a.data.status.state
end

local function wait_state(t, app, id, want)
  for _ = 1, 500 do
    if state_of(t, app, id) == want then return true end
    t.sleep(10)
  end
  t.eq(state_of(t, app, id), want, id)
end

local function job(id, image, extra)
  local doc = { job_id = id, initiator = "alice", tasks = {
    { alias = "a", app_image = image or "sleeper", parties = { { domain_id = "alice", role = "r" } } } } }
  for k, v in pairs(extra or {}) do doc[k] = v end
  return doc
end

return {
  { "the Token header: configured tokens and administrators' API tokens; else 401, empty", function(t)
    local app, auth = setup(t)
    for _, h in ipairs({ {}, { Token = "nope" }, { Token = "" }, { Authorization = "Bearer tok-1" } }) do
      local r = call(t, app, "/query", '{"job_id":"x"}', h)
      t.eq({ r.code, r.body }, { 401, "" })
      t.eq(r.headers["Content-Type"], nil)
    end
    t.eq(code_of(t, app, "/query", { job_id = "x" }), 11202)
    local admin = assert(auth:issue_token({ name = "ops", roles = { "admin" } }))
    local user = assert(auth:issue_token({ name = "al", roles = { "user" } }))
    t.eq(api(t, app, "/query", { job_id = "x" }, { Token = admin }).status.code, 11202)
    t.eq(call(t, app, "/query", '{"job_id":"x"}', { Token = user }).code, 401)
    t.eq(call(t, app, "/query", '{"job_id":"x"}', { Authorization = "Bearer " .. admin }).code, 401)
  end },

  { "client_cert: a verified client certificate instead of a token, where the deployment says so", function(t)
    local verified = { subject = "CN=alice-client,O=alice", verified = true }
    local unverified = { subject = "CN=mallory", verified = false }
    local app = setup(t, "    client_cert: true")
    local r = call(t, app, "/query", '{"job_id":"x"}', {}, nil, verified)
    t.eq(r.code, 200)
    t.eq(json.decode(r.body).status.code, 11202)
    t.eq(call(t, app, "/query", '{"job_id":"x"}', {}, nil, unverified).code, 401)
    t.eq(call(t, app, "/query", '{"job_id":"x"}', {}).code, 401)
    t.cleanup()
    t.cleanup = nil
    app = setup(t)
    t.eq(call(t, app, "/query", '{"job_id":"x"}', {}, nil, verified).code, 401, "not without client_cert")
  end },

  { "HTTP 200 and status.code for handled requests; gin's 404 for the rest", function(t)
    local app = setup(t)
    local r = call(t, app, "/create", json.encode(job("j-1", "quick")))
    t.eq(r.code, 200)
    t.eq(r.body, '{"status":{"code":0,"message":"success","details":[]},"data":{"job_id":"j-1"}}')
    t.eq({ code_of(t, app, "/create", job("j-1", "quick")) }, { 11201, 'kusciajob "j-1" already exists' })
    t.eq(code_of(t, app, "/create", "{not json"), 11101)
    local pb = json.decode(call(t, app, "/query", "\n\1x", { Token = "tok-1", ["Content-Type"] = "application/x-protobuf" }).body)
    t.eq(pb.status.code, 11101)
    t.match(pb.status.message, "protobuf request bodies are not supported")
    t.eq(code_of(t, app, "/create", job("j-2", "nope")), 11100)
    t.eq(code_of(t, app, "/create", job("j-2", "quick", { tasks = json.array({}) })), 11100)
    local e = api(t, app, "/query", { job_id = "" })
    t.eq(e, { status = { code = 11100, message = "job id can not be empty", details = {} }, data = json.null })
    t.eq(code_of(t, app, "/status/batchQuery", { job_ids = { "j-1", "nope" } }), 11203)
    t.eq(code_of(t, app, "/status/batchQuery", { job_ids = json.array({}) }), 11100)
    local b = api(t, app, "/status/batchQuery", { jobIds = { "j-1", "j-1" } })
    t.eq({ b.status.code, #b.data.jobs, b.data.jobs[1].job_id }, { 0, 2, "j-1" })
    for _, p in ipairs({ "/stop", "/cancel", "/suspend", "/restart", "/delete", "/approve" }) do
      local c = code_of(t, app, p, { job_id = "nope", result = 1 })
      t.ok(c >= 11204 and c <= 11209, p .. " " .. tostring(c))
    end
    local nf = call(t, app, "/nope", "{}")
    t.eq({ nf.code, nf.body }, { 404, "404 page not found" })
    t.eq(call(t, app, "/create", "", nil, "GET").code, 404)
    -- Another surface's job is not Kuscia's.
    assert(core.submit({ id = "native-1", surface = "native", tasks = { { alias = "x", command = { "true" } } } }))
    t.eq(code_of(t, app, "/query", { job_id = "native-1" }), 11202)
  end },

  { "suspend while running, restart, stop to Failed, restart, cancel is final", function(t)
    local app = setup(t)
    t.eq(code_of(t, app, "/create", job("c-1")), 0)
    wait_state(t, app, "c-1", "Running")
    t.eq(code_of(t, app, "/suspend", { job_id = "c-1", reason = "later" }), 0)
    wait_state(t, app, "c-1", "Suspended")
    t.eq(code_of(t, app, "/suspend", { job_id = "c-1" }), 11210)
    t.eq(code_of(t, app, "/restart", { job_id = "c-1" }), 0)
    wait_state(t, app, "c-1", "Running")
    t.eq(code_of(t, app, "/restart", { job_id = "c-1" }), 11211)
    t.eq(code_of(t, app, "/stop", { job_id = "c-1", reason = "enough" }), 0)
    wait_state(t, app, "c-1", "Failed")
    t.eq(api(t, app, "/query", { job_id = "c-1" }).data.status.err_msg, "enough")
    t.eq(code_of(t, app, "/stop", { job_id = "c-1" }), 0, "stopping a failed job changes nothing")
    t.eq(code_of(t, app, "/restart", { job_id = "c-1" }), 0)
    wait_state(t, app, "c-1", "Running")
    t.eq(code_of(t, app, "/cancel", { job_id = "c-1" }), 0)
    wait_state(t, app, "c-1", "Cancelled")
    t.eq(code_of(t, app, "/restart", { job_id = "c-1" }), 11211)
    t.eq(code_of(t, app, "/stop", { job_id = "c-1" }), 11205)
    t.eq(code_of(t, app, "/approve", { job_id = "c-1", result = "APPROVE_RESULT_ACCEPT" }), 11206)
    -- A failed (stopped) job cancelled is final: canceled in the core too.
    t.eq(code_of(t, app, "/create", job("c-2")), 0)
    wait_state(t, app, "c-2", "Running")
    t.eq(code_of(t, app, "/stop", { job_id = "c-2" }), 0)
    wait_state(t, app, "c-2", "Failed")
    t.eq(code_of(t, app, "/cancel", { job_id = "c-2" }), 0)
    t.eq(state_of(t, app, "c-2"), "Cancelled")
    t.eq(core.get("c-2").state, "canceled")
    t.eq(code_of(t, app, "/restart", { job_id = "c-2" }), 11211)
  end },

  { "delete: a running job goes at once", function(t)
    local app = setup(t)
    t.eq(code_of(t, app, "/create", job("d-1")), 0)
    wait_state(t, app, "d-1", "Running")
    t.eq(code_of(t, app, "/delete", { job_id = "d-1" }), 0)
    t.eq(code_of(t, app, "/query", { job_id = "d-1" }), 11202)
    t.eq(code_of(t, app, "/delete", { job_id = "d-1" }), 11204)
  end },

  { "approval: held jobs are accepted or rejected with the reason", function(t)
    local app = setup(t, "    approval: [approve.manual]")
    t.eq(code_of(t, app, "/create", job("p-1", "quick")), 0)
    t.eq(code_of(t, app, "/create", job("p-2", "quick")), 0)
    t.eq(state_of(t, app, "p-1"), "AwaitingApproval")
    t.eq({ code_of(t, app, "/approve", { job_id = "p-1", result = 0 }) }, { 11100, "request result must be legal" })
    t.eq(code_of(t, app, "/suspend", { job_id = "p-1" }), 11210)
    t.eq(code_of(t, app, "/approve", { jobId = "p-1", result = "APPROVE_RESULT_ACCEPT" }), 0)
    wait_state(t, app, "p-1", "Succeeded")
    t.eq(code_of(t, app, "/approve", { job_id = "p-2", result = 2, reason = "no budget" }), 0)
    local s = api(t, app, "/query", { job_id = "p-2" }).data.status
    t.eq({ s.state, s.err_msg, s.approve_status_list }, { "ApprovalReject", "no budget",
      { { domain_id = "alice", state = "JobRejected" } } })
    t.eq(code_of(t, app, "/approve", { job_id = "p-2", result = 1 }), 11206)
  end },

  { "watch: 400 with an empty body for a bad request; ADDED for each job, then the end", function(t)
    local app = setup(t)
    for _, body in ipairs({ '{"timeout_seconds":-1}', '{"timeout_seconds":2147483648}', '{"timeout_seconds":"1"}', "x" }) do
      local r = call(t, app, "/watch", body)
      t.eq({ r.code, r.body }, { 400, "" }, body)
    end
    t.eq(call(t, app, "/watch", "{}", {}).code, 401)
    t.eq(code_of(t, app, "/create", job("w-1", "quick")), 0)
    wait_state(t, app, "w-1", "Succeeded")
    local r = call(t, app, "/watch", '{"timeout_seconds":1}')
    t.eq(r.code, 200)
    t.eq(r.headers["Content-Type"], "application/json; charset=utf-8")
    t.match(r.body, '^{"object":{"job_id":"w%-1","status":{"state":"Succeeded",')
    local one = json.decode(r.body)
    t.ok(one, "one object: " .. r.body)
    t.eq(one and one.type, nil)
  end },
}
