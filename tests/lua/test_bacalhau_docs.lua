-- Bacalhau's documents (api/bacalhau/): signed envelopes made at test time
-- with the openssl command line (keys in a private temp dir, removed at
-- the end), the typed payload decoding (names in any case, enums as names
-- or ints of either generation, resources), Spec -> core job and the echo.
local crypto = require("jobrt.crypto")
local json = require("jobrt.json")
local model = require("jobrt.model")
local envelope = require("api.bacalhau.envelope")
local payload = require("api.bacalhau.payload")
local spec = require("api.bacalhau.spec")
local bunits = require("api.bacalhau.units")

local scratch = require("scratch").new("bacalhau")
local sh, out, path, rd, wr = scratch.sh, scratch.out, scratch.path, scratch.rd, scratch.wr
local dir = scratch.dir

-- Two keys: PKCS#1 and SPKI public keys as base64 DER, and each key's
-- ClientID worked out from the modulus openssl prints (not by the code
-- under test).
local keys
local function key(name)
  if not keys then
    keys = {}
    for _, k in ipairs({ "alice", "bob" }) do
      sh("cd " .. dir .. " && openssl genrsa -traditional -out " .. k .. ".pem 2048"
        .. " && openssl rsa -in " .. k .. ".pem -RSAPublicKey_out -outform DER -out " .. k .. ".pkcs1"
        .. " && openssl rsa -in " .. k .. ".pem -pubout -outform DER -out " .. k .. ".spki")
      local hex = out("openssl rsa -in " .. path(k .. ".pem") .. " -noout -modulus"):match("=(%x+)")
      local n = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end):gsub("^%z+", "")
      keys[k] = { pem = k .. ".pem", pub = crypto.base64_encode(rd(k .. ".pkcs1")),
                  spki = crypto.base64_encode(rd(k .. ".spki")),
                  id = crypto.hex(crypto.sha256(n)) }
    end
  end
  return keys[name]
end

local function sign(who, bytes)
  wr("msg", bytes)
  sh("cd " .. dir .. " && openssl dgst -sha256 -sign " .. key(who).pem .. " -out msg.sig msg")
  return crypto.base64_encode(rd("msg.sig"))
end

local function body_of(payload_text, sig, pub)
  return '{"payload":' .. payload_text .. ',"signature":' .. json.encode(sig)
    .. ',"client_public_key":' .. json.encode(pub) .. '}'
end

local function signed(who, payload_text)
  return body_of(payload_text, sign(who, payload_text), key(who).pub)
end

-- A submit payload, compact as Go's client writes it.
local function submit_text(id, spec_text, version)
  return '{"APIVersion":"' .. (version or "V1beta1") .. '","ClientID":"' .. id .. '","Spec":'
    .. (spec_text or '{"Engine":"Docker","Docker":{"Image":"ubuntu","Entrypoint":["echo","hi"]}}') .. '}'
end

-- The same payload as Python's json.dumps(..., separators=(", ", ": ")).
local function spaced(text)
  local outs, in_str, esc = {}, false, false
  for c in text:gmatch(".") do
    outs[#outs + 1] = c
    if in_str then
      if esc then esc = false elseif c == "\\" then esc = true elseif c == '"' then in_str = false end
    elseif c == '"' then
      in_str = true
    elseif c == "," or c == ":" then
      outs[#outs + 1] = " "
    end
  end
  return table.concat(outs)
end

local function err_of(t, v, e)
  t.ok(v == nil, "expected a failure")
  t.ok(type(e) == "table" and type(e.message) == "string", "err is a table with a message")
  return e or {}
end

local function decode_spec(t, spec_text, version)
  local doc = json.decode(submit_text(string.rep("a", 64), spec_text, version))
  local p, e = payload.decode("submit", doc)
  t.ok(p, e and e.message)
  return p and p.Spec
end

local function spec_err(t, spec_text, version)
  local doc = json.decode(submit_text(string.rep("a", 64), spec_text, version))
  return err_of(t, payload.decode("submit", doc))
end

local OPTS = {
  images = { ubuntu = "/", host = "/" },
  host_paths = { "/srv/data" },
  defaults = { cpu = 1000, memory = 1 << 30, timeout = 1800 },
  node_labels = { region = "eu", zone = "a", cores = "8" },
}

local function job_of(t, spec_text, opts, version)
  local s = decode_spec(t, spec_text, version)
  if not s then return nil end
  local job, pub = spec.to_job(s, opts or OPTS)
  t.ok(job, pub and pub.message)
  if job then
    local copy = json.decode(json.encode(job))
    local ok, why = model.validate(copy)
    t.ok(ok, "the core model accepts the job: " .. tostring(why))
  end
  return job, pub
end

local function job_err(t, spec_text, opts, version)
  local s = decode_spec(t, spec_text, version)
  if not s then return {} end
  return err_of(t, spec.to_job(s, opts or OPTS))
end

local function docker(extra)
  return '{"Engine":"docker","Docker":{"Image":"ubuntu","Entrypoint":["echo","hi"]}'
    .. (extra and ("," .. extra) or "") .. '}'
end

return {
  { "a compact payload (Go's client) and a spaced one (Python's) both verify", function(t)
    local a = key("alice")
    local compact = submit_text(a.id)
    local p, info = envelope.open(signed("alice", compact), "submit")
    t.ok(p, info and info.message)
    t.eq(info and info.client_id, a.id)
    t.eq(info and info.raw, compact)
    t.eq(info and info.public_key, a.pub)
    t.eq(p and p.APIVersion, "V1beta1")
    t.eq(p and p.Spec.Engine, "docker")
    t.eq(p and p.Spec.Docker.Entrypoint, { "echo", "hi" })
    local text = spaced(compact)
    t.ok(text:find('"ClientID": "', 1, true), "the spaced form has spaces")
    local p2, info2 = envelope.open(signed("alice", text), "submit")
    t.ok(p2, info2 and info2.message)
    t.eq(info2 and info2.raw, text)
  end },

  { "tampering: one byte changed, re-serialised, another key's ClientID", function(t)
    local a, b = key("alice"), key("bob")
    local text = submit_text(a.id)
    local sig = sign("alice", text)
    local changed = text:gsub('"hi"', '"ho"')
    local e = err_of(t, envelope.open(body_of(changed, sig, a.pub), "submit"))
    t.eq(e.status, 400)
    t.eq(e.field, "signature")
    t.match(e.message, "does not verify")
    e = err_of(t, envelope.open(body_of(spaced(text), sig, a.pub), "submit"))
    t.eq({ e.status, e.field }, { 400, "signature" })
    -- Bob signs a payload claiming Alice's ClientID with his own key.
    e = err_of(t, envelope.open(signed("bob", text), "submit"))
    t.eq(e.status, 401)
    t.match(e.message, "the public key does not match ClientID")
    t.match(e.message, b.id)
    -- Alice's signature with Bob's key attached.
    e = err_of(t, envelope.open(body_of(text, sig, b.pub), "submit"))
    t.eq({ e.status, e.field }, { 400, "signature" })
  end },

  { "keys: SPKI accepted, bad base64 and unparsable keys named", function(t)
    local a = key("alice")
    local text = submit_text(a.id)
    local sig = sign("alice", text)
    t.ok(envelope.open(body_of(text, sig, a.spki), "submit"), "SPKI key")
    local e = err_of(t, envelope.open(body_of(text, sig, "not base64!"), "submit"))
    t.eq({ e.status, e.field }, { 400, "client_public_key" })
    t.match(e.message, "not base64")
    e = err_of(t, envelope.open(body_of(text, sig, crypto.base64_encode("garbage")), "submit"))
    t.eq({ e.status, e.field }, { 400, "client_public_key" })
    t.match(e.message, "not a usable RSA public key")
    e = err_of(t, envelope.open(body_of(text, "%%%", a.pub), "submit"))
    t.eq({ e.status, e.field }, { 400, "signature" })
    t.match(e.message, "not base64")
    e = err_of(t, envelope.open(body_of(text, crypto.base64_encode("short"), a.pub), "submit"))
    t.eq({ e.status, e.field }, { 400, "signature" })
  end },

  { "envelope members: each missing, wrong types, unknown, duplicate payload", function(t)
    local a = key("alice")
    local text = submit_text(a.id)
    local sig = sign("alice", text)
    local members = { payload = text, signature = json.encode(sig), client_public_key = json.encode(a.pub) }
    for _, m in ipairs({ "payload", "signature", "client_public_key" }) do
      local parts = {}
      for _, k in ipairs({ "payload", "signature", "client_public_key" }) do
        if k ~= m then parts[#parts + 1] = '"' .. k .. '":' .. members[k] end
      end
      local e = err_of(t, envelope.open("{" .. table.concat(parts, ",") .. "}", "submit"))
      t.eq({ e.status, e.field }, { 400, m }, "missing " .. m)
      t.match(e.message, m)
    end
    local e = err_of(t, envelope.open('{"payload":' .. text .. ',"payload":' .. text .. ',"signature":'
      .. members.signature .. ',"client_public_key":' .. members.client_public_key .. '}', "submit"))
    t.eq(e.status, 400)
    t.match(e.message, "duplicate member \"payload\"")
    e = err_of(t, envelope.open(body_of("[1]", sig, a.pub), "submit"))
    t.eq({ e.status, e.field }, { 400, "payload" })
    e = err_of(t, envelope.open('{"payload":' .. text .. ',"signature":7,"client_public_key":'
      .. members.client_public_key .. '}', "submit"))
    t.eq({ e.status, e.field }, { 400, "signature" })
    e = err_of(t, envelope.open(body_of(text, sig, a.pub):gsub("client_public_key", "client_publickey"), "submit"))
    t.eq({ e.status, e.field }, { 400, "client_publickey" })
    t.match(e.message, 'did you mean "client_public_key"')
    e = err_of(t, envelope.open(body_of(text, sig, a.pub):gsub('"payload"', '"Payload"'), "submit"))
    t.eq({ e.status, e.field }, { 400, "Payload" })
    e = err_of(t, envelope.open("[]", "submit"))
    t.eq(e.status, 400)
    e = err_of(t, envelope.open('{"payload":', "submit"))
    t.eq(e.status, 400)
    t.match(e.message, "not a signed request")
  end },

  { "ClientID: missing and malformed are 400, checked before the payload's fields", function(t)
    local a = key("alice")
    local e = err_of(t, envelope.open(signed("alice", '{"JobID":"j"}'), "cancel"))
    t.eq({ e.status, e.field }, { 400, "ClientID" })
    e = err_of(t, envelope.open(signed("alice", '{"clientid":"' .. a.id:upper() .. '","JobID":"j"}'), "cancel"))
    t.eq({ e.status, e.field }, { 400, "clientid" })
    -- another's ClientID wins over a bad Spec: the 401 comes first
    e = err_of(t, envelope.open(signed("bob", submit_text(a.id, '{"Nope":1}')), "submit"))
    t.eq(e.status, 401)
    e = err_of(t, envelope.open(signed("alice", submit_text(a.id, '{"Nope":1}')), "submit"))
    t.eq({ e.status, e.field }, { 400, "Spec.Nope" })
  end },

  { "cancel, approve and logs payloads, field names in any case", function(t)
    local a = key("alice")
    local p, info = envelope.open(signed("alice", '{"clientID":"' .. a.id
      .. '","jobid":"j-1","REASON":"enough"}'), "cancel")
    t.ok(p, info and info.message)
    t.eq(p and { p.ClientID, p.JobID, p.Reason }, { a.id, "j-1", "enough" })
    p, info = envelope.open(signed("alice", '{"ClientID":"' .. a.id
      .. '","JobID":"j-1","Response":{"ShouldBid":false,"shouldwait":false,"Reason":"no"}}'), "approve")
    t.ok(p, info and info.message)
    t.eq(p and p.Response, { shouldBid = false, shouldWait = false, reason = "no" })
    p, info = envelope.open(signed("alice", '{"ClientID":"' .. a.id
      .. '","JobID":"j-1","ExecutionID":"e","WithHistory":true,"follow":true}'), "logs")
    t.ok(p, info and info.message)
    t.eq(p and { p.JobID, p.ExecutionID, p.WithHistory, p.Follow }, { "j-1", "e", true, true })
    local e = err_of(t, envelope.open(signed("alice", '{"ClientID":"' .. a.id .. '"}'), "cancel"))
    t.eq({ e.status, e.field }, { 400, "JobID" })
    e = err_of(t, envelope.open(signed("alice", '{"ClientID":"' .. a.id .. '","JobID":"j"}'), "approve"))
    t.eq({ e.status, e.field }, { 400, "Response" })
    e = err_of(t, envelope.open(signed("alice", '{"ClientID":"' .. a.id .. '","JobID":5}'), "cancel"))
    t.eq({ e.status, e.field }, { 400, "JobID" })
    t.match(e.message, "must be a string")
  end },

  { "Spec field names in any case; one field sent twice is refused", function(t)
    local s = decode_spec(t, '{"engine":"docker","docker":{"image":"ubuntu","entrypoint":["ls"],'
      .. '"PARAMETERS":["-l"]},"inputs":[{"storagesource":"inline","url":"data:,x","path":"/i/x"}],'
      .. '"Outputs":[{"name":"o","PATH":"/outputs/o"}],"deal":{"concurrency":1}}')
    t.eq(s and s.Docker, { Image = "ubuntu", Entrypoint = { "ls" }, Parameters = { "-l" } })
    t.eq(s and s.Inputs[1].Path, "/i/x")
    t.eq(s and s.Outputs[1].Path, "/outputs/o")
    t.eq(s and payload.spelt(s, "Inputs"), "inputs")
    t.eq(s and payload.spelt(s.Outputs[1], "Path"), "PATH")
    local e = spec_err(t, '{"inputs":[],"Inputs":[]}')
    t.eq(e.status, 400)
    t.match(e.message, "Spec.Inputs and Spec.inputs are the same field")
    e = spec_err(t, '{"Timout":3}')
    t.eq(e.field, "Spec.Timout")
    t.match(e.message, 'did you mean "Timeout"')
    e = spec_err(t, '{"Docker":{"Imag":"x"}}')
    t.eq(e.field, "Spec.Docker.Imag")
    t.match(e.message, 'did you mean "Image"')
    -- v1.0.4 spells Resources as TotalAllocatedResources; nulls are absent
    s = decode_spec(t, '{"TotalAllocatedResources":{"CPU":"1"},"Docker":null,"Timeout":null}')
    t.eq(s and s.Resources, { CPU = "1" })
    t.eq(s and s.Docker, nil)
    e = spec_err(t, '{"Deal":{"Concurrency":"2"}}')
    t.eq(e.field, "Spec.Deal.Concurrency")
    t.match(e.message, "must be a whole number, not a string")
    e = spec_err(t, '{"Resources":{"CPU":1}}')
    t.eq(e.field, "Spec.Resources.CPU")
    e = spec_err(t, '{"Annotations":"a"}')
    t.match(e.message, "Spec.Annotations must be a list")
    e = spec_err(t, '{"inputs":[{"Path":"/x"},null]}')
    t.eq(e.field, "Spec.inputs[1]")
    e = err_of(t, payload.decode("submit", json.decode('{"ClientID":"' .. string.rep("a", 64)
      .. '","APIVersion":"V2","Spec":{}}')))
    t.eq(e.field, "APIVersion")
    t.match(e.message, "V1alpha1, V1beta1, V1beta2")
    e = err_of(t, payload.decode("submit", json.decode('{"ClientID":"' .. string.rep("a", 64) .. '","Spec":{}}')))
    t.eq(e.field, "APIVersion")
    t.match(e.message, "missing")
    s = decode_spec(t, '{}', " v1beta2 ")
    t.ok(s, "APIVersion in any case")
  end },

  { "enums: names in any case with blanks, ints in each generation's numbering", function(t)
    local s = decode_spec(t, '{"Engine":" DOCKER ","Publisher":"ipfs","PublisherSpec":{"Type":"Estuary"},'
      .. '"Verifier":"noop","Network":{"Type":"http"},"inputs":[{"StorageSource":"urldownload"},'
      .. '{"StorageSource":"URLDownload"},{"StorageSource":"localDirectory"}]}')
    t.eq(s and { s.Engine, s.Publisher, s.PublisherSpec.Type, s.Verifier, s.Network.Type },
      { "docker", "ipfs", "estuary", "noop", "http" })
    t.eq(s and { s.Inputs[1].StorageSource, s.Inputs[2].StorageSource, s.Inputs[3].StorageSource },
      { "urldownload", "urldownload", "localdirectory" })
    -- v1.0: Publisher 3 Filecoin, StorageSource 8 Inline; v1.1: 3 estuary, 6 inline
    local ints = '{"Engine":2,"Publisher":3,"Verifier":1,"Network":{"Type":0},'
      .. '"inputs":[{"StorageSource":8},{"StorageSource":6},{"StorageSource":4}]}'
    s = decode_spec(t, ints, "V1beta1")
    t.eq(s and { s.Engine, s.Publisher, s.Verifier, s.Network.Type },
      { "docker", "filecoin", "noop", "none" })
    t.eq(s and { s.Inputs[1].StorageSource, s.Inputs[2].StorageSource, s.Inputs[3].StorageSource },
      { "inline", "filecoin", "urldownload" })
    s = decode_spec(t, ints, "V1beta2")
    t.eq(s and { s.Engine, s.Publisher, s.Network.Type }, { "docker", "estuary", "none" })
    t.eq(s and { s.Inputs[1].StorageSource, s.Inputs[2].StorageSource, s.Inputs[3].StorageSource },
      { "s3", "inline", "urldownload" })
    t.eq(decode_spec(t, '{"Engine":4}', "V1alpha1").Engine, "language")
    local e = spec_err(t, '{"Engine":4}', "V1beta2")
    t.eq(e.field, "Spec.Engine")
    t.match(e.message, "not a number of an engine in API v1.1")
    e = spec_err(t, '{"Engine":"dokker"}')
    t.match(e.message, 'did you mean "Docker"')
    e = spec_err(t, '{"Network":{"Type":3}}')
    t.eq(e.field, "Spec.Network.Type")
    e = spec_err(t, '{"Engine":1.5}')
    t.match(e.message, "fraction")
    s = decode_spec(t, '{"PublisherSpec":{"Type":"Local"},"Deal":{"TargetingMode":"all"}}')
    t.eq(s and { s.PublisherSpec.Type, s.Deal.TargetingMode }, { "local", true })
    e = spec_err(t, '{"Deal":{"TargetingMode":"some"}}')
    t.eq(e.field, "Spec.Deal.TargetingMode")
  end },

  { "Timeout and resource strings", function(t)
    t.eq(decode_spec(t, '{"Timeout":1800}').Timeout, 1800)
    t.eq(decode_spec(t, '{"Timeout":2.5}').Timeout, 2.5)
    t.eq(spec_err(t, '{"Timeout":-1}').field, "Spec.Timeout")
    t.eq(spec_err(t, '{"Timeout":"30s"}').field, "Spec.Timeout")
    t.eq({ bunits.cpu("500m"), bunits.cpu("0.5"), bunits.cpu("2"), bunits.cpu("100M") }, { 500, 500, 2000, 100 })
    t.eq({ bunits.bytes("64Mb"), bunits.bytes("1Gb"), bunits.bytes("1Gi"), bunits.bytes("512MiB"),
           bunits.bytes("1000000"), bunits.bytes("1 GB"), bunits.bytes("2k") },
         { 64 << 20, 1 << 30, 1 << 30, 512 << 20, 1000000, 1 << 30, 2048 })
    t.eq({ bunits.gpu("1"), bunits.gpu("0") }, { 1, 0 })
    for _, bad in ipairs({ "1Xb", "-1Gb", "Gb", "1.3", "" }) do
      t.eq(bunits.bytes(bad), nil, "bytes " .. bad)
    end
    t.eq(bunits.cpu("1.0001"), nil)
    t.eq(bunits.gpu("1.5"), nil)
    local e = spec_err(t, '{"Resources":{"Memory":"lots"}}')
    t.eq(e.field, "Spec.Resources.Memory")
    t.match(e.message, '"lots" is not a size')
    e = spec_err(t, '{"Resources":{"CPU":"fast"}}')
    t.eq(e.field, "Spec.Resources.CPU")
    e = spec_err(t, '{"Resources":{"GPU":"one"}}')
    t.eq(e.field, "Spec.Resources.GPU")
    t.eq(decode_spec(t, '{"Resources":{"CPU":"","GPU":""}}').Resources, { CPU = "", GPU = "" })
    t.eq({ bunits.cpu_text(500), bunits.cpu_text(2000), bunits.bytes_text(1 << 30),
           bunits.bytes_text(1000000) }, { "500m", "2", "1Gi", "1000000" })
  end },

  { "unsigned request bodies: list, states, results, events", function(t)
    local l, e = payload.read("list", '{"ID":"j","client_id":"c","include_tags":["a"],"max_jobs":10,'
      .. '"return_all":true,"sort_by":"created_at","Sort_Reverse":true}')
    t.ok(l, e and e.message)
    t.eq(l, { id = "j", client_id = "c", include_tags = { "a" }, max_jobs = 10, return_all = true,
              sort_by = "created_at", sort_reverse = true })
    t.eq(payload.read("list", ""), {})
    e = err_of(t, payload.read("list", '{"max_jobs":"10"}'))
    t.eq({ e.status, e.field }, { 400, "max_jobs" })
    e = err_of(t, payload.read("list", '{"maxjobs":1}'))
    t.match(e.message, 'did you mean "max_jobs"')
    t.eq(payload.read("states", '{"client_id":"c","job_id":"j"}'), { client_id = "c", job_id = "j" })
    t.eq(payload.read("results", '{"job_id":"j"}'), { job_id = "j" })
    t.eq(err_of(t, payload.read("results", '{"client_id":"c"}')).field, "job_id")
    local ev = payload.read("events", '{"job_id":"j","filters":{"exclude_job_level":true,"since":5,'
      .. '"execution_id":"e","node_id":"n","exclude_execution_level":false}}')
    t.eq(ev and ev.filters, { exclude_job_level = true, since = 5, execution_id = "e", node_id = "n",
                             exclude_execution_level = false })
    e = err_of(t, payload.read("events", '{"job_id":"j","filters":{"since":"yesterday"}}'))
    t.eq(e.field, "filters.since")
    e = err_of(t, payload.read("states", "{nope"))
    t.match(e.message, "not JSON")
  end },

  { "to_job: Docker, Deal copies, annotations, publisher, resources and timeout", function(t)
    local job, pub = job_of(t, '{"Engine":"Docker","Docker":{"Image":"ubuntu:latest","Entrypoint":["sh","-c"],'
      .. '"Parameters":["echo $A"],"EnvironmentVariables":["A=1=2","B="],"WorkingDirectory":"/outputs"},'
      .. '"Annotations":["gpu-free","team"],"Deal":{"Concurrency":3,"Confidence":2},'
      .. '"PublisherSpec":{"Type":"noop"},"Resources":{"CPU":"250m","Memory":"64Mb","Disk":"1Gb","GPU":"0"},'
      .. '"Timeout":60}')
    if not job then return end
    t.eq(pub, "noop")
    t.eq(job.labels, { ["gpu-free"] = "true", team = "true" })
    t.eq(#job.tasks, 3)
    t.eq({ job.tasks[1].alias, job.tasks[2].alias, job.tasks[3].alias }, { "0", "1", "2" })
    local task = job.tasks[2]
    t.eq(task.image, "ubuntu")
    t.eq(task.command, { "sh", "-c", "echo $A" })
    t.eq(task.env, { A = "1=2", B = "" })
    t.eq(task.workdir, "/outputs")
    t.eq(task.resources, { cpu = 250, memory = 64 << 20, disk = 1 << 30, gpu = 0 })
    t.eq(task.timeout, 60)
    t.eq(task.network, { mode = "none" })
    t.eq(task.outputs, { { name = "outputs", path = "/outputs" } })
    job, pub = job_of(t, docker('"Publisher":"Ipfs"'))
    t.eq(pub, "ipfs")
    t.eq(job and job.labels, nil)
    t.eq(job and job.tasks[1].resources, { cpu = 1000, memory = 1 << 30 })
    t.eq(job and job.tasks[1].timeout, 1800)
    t.eq(select(2, job_of(t, docker())), "local")
    job = job_of(t, docker('"Timeout":0,"Deal":{"TargetingMode":true}'))
    t.eq(job and #job.tasks, 1)
    t.eq(job and job.tasks[1].timeout, 1800)
  end },

  { "to_job refuses: images, commands, env, engines, verifier, deal", function(t)
    local e = job_err(t, '{"Engine":"Docker","Docker":{"Image":"alpine","Entrypoint":["ls"]}}')
    t.eq({ e.status, e.field }, { 400, "Spec.Docker.Image" })
    t.match(e.message, '"alpine" is not an image this node has: use one of host, ubuntu')
    e = job_err(t, '{"Engine":"Docker","docker":{"image":"","Entrypoint":["ls"]}}')
    t.eq(e.field, "Spec.docker.image")
    e = job_err(t, '{"Engine":"Docker","Docker":{"Image":"ubuntu"}}')
    t.eq(e.field, "Spec.Docker")
    t.match(e.message, "runs no command")
    e = job_err(t, '{"Engine":"Docker","Docker":{"Image":"ubuntu","Entrypoint":["ls"],'
      .. '"EnvironmentVariables":["A=1","no value"]}}')
    t.eq(e.field, "Spec.Docker.EnvironmentVariables[1]")
    e = job_err(t, '{"Engine":"Docker","Docker":{"Image":"ubuntu","Entrypoint":["ls"],'
      .. '"EnvironmentVariables":["1A=x"]}}')
    t.eq(e.field, "Spec.Docker.EnvironmentVariables[0]")
    e = job_err(t, '{"Engine":"Wasm","Wasm":{"EntryModule":{"StorageSource":"Inline","URL":"data:,x"}}}')
    t.eq(e.field, "Spec.Engine")
    t.match(e.message, "Wasm jobs are not run on this node")
    e = job_err(t, '{"Engine":"Language"}')
    t.match(e.message, "engine Language is not available")
    e = job_err(t, '{"Docker":{"Image":"ubuntu","Entrypoint":["ls"]}}')
    t.eq(e.field, "Spec.Engine")
    e = job_err(t, docker('"Verifier":"Deterministic"'))
    t.eq(e.field, "Spec.Verifier")
    t.match(e.message, "verifier Deterministic")
    e = job_err(t, docker('"Deal":{"Concurrency":0}'))
    t.eq(e.field, "Spec.Deal.Concurrency")
    e = job_err(t, docker('"Deal":{"Concurrency":2,"Confidence":3}'))
    t.eq(e.field, "Spec.Deal.Confidence")
    e = job_err(t, docker('"Deal":{"Concurrency":2,"TargetingMode":true}'))
    t.eq(e.field, "Spec.Deal.Concurrency")
    e = job_err(t, docker('"Deal":{"Concurrency":5}'), setmetatable({ max_tasks = 4 }, { __index = OPTS }))
    t.match(e.message, "more than this node runs")
    e = job_err(t, docker('"EngineSpec":{"Type":"docker","Params":{"Image":"x"}}'))
    t.eq(e.field, "Spec.EngineSpec.Params")
    local job = job_of(t, '{"EngineSpec":{"Type":"Noop"}}')
    t.eq(job and job.tasks[1].command, { "true" })
  end },

  { "to_job: Noop and Wasm engines", function(t)
    local job = job_of(t, '{"Engine":"noop"}')
    t.eq(job and { job.tasks[1].image, job.tasks[1].command }, { "host", { "true" } })
    local opts = setmetatable({ wasm = { image = "host", command = { "/usr/bin/wasmtime", "run" } } },
      { __index = OPTS })
    job = job_of(t, '{"Engine":"wasm","Wasm":{"EntryModule":{"StorageSource":"URLDownload",'
      .. '"URL":"https://example.com/m/main.wasm","Path":"/wasm"},"EntryPoint":"run",'
      .. '"Parameters":["a"],"EnvironmentVariables":{"K":"v"}}}', opts)
    if not job then return end
    local task = job.tasks[1]
    t.eq(task.image, "host")
    t.eq(task.command, { "/usr/bin/wasmtime", "run", "/wasm/main.wasm", "run", "a" })
    t.eq(task.env, { K = "v" })
    t.eq(task.inputs, { { source = "url", url = "https://example.com/m/main.wasm", target = "/wasm/main.wasm" } })
    job = job_of(t, '{"Engine":"wasm","Wasm":{"EntryModule":{"StorageSource":"Inline",'
      .. '"URL":"data:application/wasm;base64,AGFzbQ=="}}}', opts)
    t.eq(job and job.tasks[1].command, { "/usr/bin/wasmtime", "run", "/inputs/entry-module", "_start" })
    t.eq(job and job.tasks[1].inputs[1].data, "\0asm")
    local e = job_err(t, '{"Engine":"wasm","Wasm":{}}', opts)
    t.eq(e.field, "Spec.Wasm.EntryModule")
    e = job_err(t, '{"Engine":"wasm","Wasm":{"EntryModule":{"StorageSource":"Inline","URL":"data:,x"},'
      .. '"ImportModules":[{"StorageSource":"Inline","URL":"data:,y"}]}}', opts)
    t.eq(e.field, "Spec.Wasm.ImportModules")
  end },

  { "to_job: network types and domains", function(t)
    t.eq(job_of(t, docker('"Network":{"Type":"Full"}')).tasks[1].network, { mode = "full" })
    t.eq(job_of(t, docker('"Network":{"Type":"None"}')).tasks[1].network, { mode = "none" })
    t.eq(job_of(t, docker('"Network":{"Type":"HTTP","Domains":["example.com",".pypi.org"]}')).tasks[1].network,
      { mode = "allow", domains = { "example.com", "pypi.org", "*.pypi.org" } })
    local e = job_err(t, docker('"Network":{"Type":"Full","Domains":["example.com"]}'))
    t.eq(e.field, "Spec.Network.Domains")
  end },

  { "to_job: inputs (URL, inline, local directory) and where they are mounted", function(t)
    local job = job_of(t, docker('"inputs":[{"StorageSource":"URLDownload","URL":"https://h/d/f.csv?x=1","path":"/inputs"},'
      .. '{"StorageSource":"URLDownload","URL":"http://h/"},'
      .. '{"StorageSource":"Inline","URL":"data:text/plain;base64,aGVsbG8=","path":"/data/a.txt"},'
      .. '{"StorageSource":"Inline","URL":"data:,a%20b%2C"},'
      .. '{"StorageSource":"LocalDirectory","SourcePath":"/srv/data/set","path":"/set"},'
      .. '{"StorageSource":"LocalDirectory","SourcePath":"/srv/data","ReadWrite":true,"path":"/rw"}]'))
    if not job then return end
    t.eq(job.tasks[1].inputs, {
      { source = "url", url = "https://h/d/f.csv?x=1", target = "/inputs/f.csv" },
      { source = "url", url = "http://h/", target = "/inputs/download" },
      { source = "inline", data = "hello", target = "/data/a.txt" },
      { source = "inline", data = "a b," },
      { source = "path", path = "/srv/data/set", target = "/set", readonly = true },
      { source = "path", path = "/srv/data", target = "/rw", readonly = false },
    })
    local function input_err(s) return job_err(t, docker('"inputs":[' .. s .. ']')) end
    local e = input_err('{"StorageSource":"IPFS","CID":"Qm"}')
    t.eq(e.field, "Spec.inputs[0].StorageSource")
    t.match(e.message, "storage source IPFS is not available on this node")
    for _, src in ipairs({ "S3", "RepoClone", "Estuary", "Filecoin" }) do
      t.match(input_err('{"StorageSource":"' .. src .. '"}').message, "storage source " .. src .. " is not available")
    end
    e = input_err('{"StorageSource":"Inline","URL":"data:application/gzip;base64,H4sI"}')
    t.eq(e.field, "Spec.inputs[0].URL")
    t.match(e.message, "gzip data, which is not supported")
    t.match(input_err('{"StorageSource":"Inline","URL":"data:;base64,@@"}').message, "not base64")
    t.match(input_err('{"StorageSource":"Inline","URL":"data:,50%"}').message, "'%%' not followed")
    t.match(input_err('{"StorageSource":"Inline","URL":"http://x"}').message, 'not a "data:" URL')
    e = input_err('{"StorageSource":"LocalDirectory","SourcePath":"/etc","path":"/etc2"}')
    t.eq(e.field, "Spec.inputs[0].SourcePath")
    t.match(e.message, "sandbox.allow_host_paths")
    t.eq(input_err('{"StorageSource":"LocalDirectory","SourcePath":"/srv/data/../x"}').field,
      "Spec.inputs[0].SourcePath")
    t.eq(input_err('{"StorageSource":"LocalDirectory","SourcePath":"/srv/database"}').field,
      "Spec.inputs[0].SourcePath")
    e = input_err('{"StorageSource":"URLDownload","URL":"ftp://h/f"}')
    t.eq(e.field, "Spec.inputs[0].URL")
    e = input_err('{"StorageSource":"Inline","URL":"data:,x","Path":"/outputs/x"}')
    t.eq(e.field, "Spec.inputs[0].Path")
    t.match(e.message, "keeps for itself")
    t.eq(input_err('{"StorageSource":"Inline","URL":"data:,x","path":"relative"}').field, "Spec.inputs[0].path")
    t.eq(input_err('{"URL":"data:,x"}').field, "Spec.inputs[0].StorageSource")
  end },

  { "to_job: outputs under /outputs", function(t)
    local job = job_of(t, docker('"outputs":[{"Name":"outputs","path":"/outputs"},{"path":"/outputs/logs"}]'))
    t.eq(job and job.tasks[1].outputs, { { name = "outputs", path = "/outputs" }, { name = "logs", path = "/outputs/logs" } })
    local e = job_err(t, docker('"Outputs":[{"Name":"r","Path":"/results"}]'))
    t.eq(e.field, "Spec.Outputs[0].Path")
    t.match(e.message, "collected from /outputs only")
  end },

  { "to_job: node selectors against the node's labels", function(t)
    local function sel(key, op, values)
      return docker('"NodeSelectors":[{"Key":"' .. key .. '","Operator":"' .. op .. '"'
        .. (values and (',"Values":' .. json.encode(json.array(values))) or "") .. '}]')
    end
    local ok = {
      sel("region", "in", { "eu", "us" }), sel("region", "=", { "eu" }), sel("region", "==", { "eu" }),
      sel("region", "!=", { "us" }), sel("region", "notin", { "us" }), sel("gpu", "notin", { "x" }),
      sel("zone", "exists"), sel("gpu", "!"), sel("cores", "gt", { "4" }), sel("cores", "lt", { "16" }),
      sel("region", " IN ", { "eu" }),
    }
    for _, s in ipairs(ok) do t.ok(job_of(t, s), s) end
    local bad = {
      sel("region", "in", { "us" }), sel("region", "=", { "us" }), sel("region", "notin", { "eu" }),
      sel("gpu", "exists"), sel("zone", "!"), sel("cores", "gt", { "8" }), sel("cores", "lt", { "8" }),
      sel("gpu", "gt", { "1" }),
    }
    for _, s in ipairs(bad) do
      local e = job_err(t, s)
      t.eq(e.field, "Spec.NodeSelectors[0]", s)
      t.match(e.message, "does not match this node")
    end
    t.match(job_err(t, sel("a", "like", { "x" })).message, "operator \"like\"")
    t.match(job_err(t, sel("a", "=", { "x", "y" })).message, "exactly one value")
    t.match(job_err(t, sel("a", "exists", { "x" })).message, "no Values")
    t.match(job_err(t, sel("a", "in", {})).message, "one or more")
    t.match(job_err(t, sel("cores", "gt", { "many" })).message, "whole number")
  end },

  { "emit: each generation's names, defaults filled in", function(t)
    local text = '{"Engine":2,"Publisher":"ipfs","Verifier":"Noop","Docker":{"Image":"ubuntu","Entrypoint":["ls"]},'
      .. '"inputs":[{"StorageSource":"urlDownload","URL":"http://h/f","path":"/inputs"}],'
      .. '"Resources":{"Memory":"64Mb"},"Annotations":["a"]}'
    local s = decode_spec(t, text, "V1beta1")
    if not s then return end
    local d = OPTS.defaults
    local v10 = spec.emit(s, "V1beta1", d)
    t.eq(v10, {
      Engine = "Docker", Publisher = "Ipfs", Verifier = "Noop",
      Docker = { Image = "ubuntu", Entrypoint = { "ls" } },
      inputs = { { StorageSource = "URLDownload", URL = "http://h/f", path = "/inputs" } },
      outputs = { { Name = "outputs", path = "/outputs" } },
      Resources = { CPU = "1", Memory = "64Mb" }, Network = { Type = "None" }, Timeout = 1800,
      Annotations = { "a" }, Deal = { Concurrency = 1 },
    })
    local v11 = spec.emit(s, "V1beta2", d)
    t.eq(v11.Engine, "docker")
    t.eq(v11.Publisher, "ipfs")
    t.eq(v11.Inputs, { { StorageSource = "urlDownload", URL = "http://h/f", Path = "/inputs" } })
    t.eq(v11.Outputs, { { Name = "outputs", Path = "/outputs" } })
    t.eq(v11.inputs, nil)
    t.eq(v11.Verifier, nil, "v1.1 has no verifiers")
    -- the echo decodes again to the same Spec, and survives the store's JSON
    local again = decode_spec(t, json.encode(v11), "V1beta2")
    t.eq(again and again.Inputs, s.Inputs)
    local stored = json.decode(json.encode(s))
    t.eq(json.decode(json.encode(spec.emit(stored, "V1beta1", d))), json.decode(json.encode(v10)))
    local w = spec.emit(decode_spec(t, '{"Engine":"wasm","Wasm":{"EntryModule":{"StorageSource":"inline",'
      .. '"URL":"data:,x"}},"Deal":{"Concurrency":2},"Timeout":5,"Resources":{"CPU":"250m"},'
      .. '"Network":{"Type":"HTTP","Domains":["a.b"]}}'), "V1alpha1", { cpu = 500, memory = 1000000 })
    t.eq(w.Wasm.EntryModule, { StorageSource = "Inline", URL = "data:,x" })
    t.eq({ w.Deal.Concurrency, w.Timeout, w.Resources.CPU, w.Resources.Memory, w.Network.Type },
      { 2, 5, "250m", "1000000", "HTTP" })
  end },

  { "cleanup", function(t)
    t.ok(scratch.remove())
  end },
}
