-- The documents of Bacalhau's legacy requester API as schemas for
-- api/bacalhau/decode.lua: the signed payloads (JobCreatePayload,
-- JobCancelPayload, LogsPayload, ModerateJobRequest) and the unsigned
-- request bodies (list, states, results, events). Every field that v1.0.x
-- or v1.1.x knows is accepted, null or not; any other is refused by name.
local json = require("jobrt.json")
local D = require("api.bacalhau.decode")
local enums = require("api.bacalhau.enums")
local bunits = require("api.bacalhau.units")

local M = {}

local str, int, num, bool, list, map = D.string, D.int, D.number, D.bool, D.list, D.map

-- A ClientID names a key: the hex SHA-256 of its RSA modulus.
local function client_id_check(v)
  if not v:find("^" .. string.rep("%x", 64) .. "$") or v:find("%u") then
    return nil, "is not a client ID (64 lower-case hex digits: the SHA-256 of the key's modulus)"
  end
end

local S3 = D.object({
  { "Bucket", str() }, { "Key", str() }, { "Checksum", str() }, { "VersionID", str() },
  { "Endpoint", str() }, { "Region", str() },
})

local STORAGE = D.object({
  { "StorageSource", D.enum("StorageSource") },
  { "Name", str() },
  { "CID", str() },
  { "URL", str() },
  { "S3", S3 },
  { "Repo", str() },
  { "SourcePath", str() },
  { "ReadWrite", bool() },
  { "Path", str() }, -- "path" in v1.0.3
  { "Metadata", map(str()) },
})

local function resource(reader)
  return str({ check = function(v)
    if v == "" then return end -- Go's zero value: not given
    return reader(v)
  end })
end

local RESOURCES = D.object({
  { "CPU", resource(bunits.cpu) },
  { "Memory", resource(bunits.bytes) },
  { "Disk", resource(bunits.bytes) },
  { "GPU", resource(bunits.gpu) },
})

local SPEC = D.object({
  { "Engine", D.enum("Engine") },
  { "EngineSpec", D.object({ { "Type", str() }, { "Params", D.any_object() } }) },
  { "Verifier", D.enum("Verifier") },
  { "Publisher", D.enum("Publisher") },
  { "PublisherSpec", D.object({ { "Type", D.enum("Publisher") }, { "Params", D.any_object() } }) },
  { "Docker", D.object({
    { "Image", str() }, { "Entrypoint", list(str()) }, { "Parameters", list(str()) },
    { "EnvironmentVariables", list(str()) }, { "WorkingDirectory", str() },
  }) },
  { "Wasm", D.object({
    { "EntryModule", STORAGE }, { "EntryPoint", str() }, { "Parameters", list(str()) },
    { "EnvironmentVariables", map(str()) }, { "ImportModules", list(STORAGE) },
  }) },
  { "Language", D.object({
    { "Language", str() }, { "LanguageVersion", str() }, { "DeterministicExecution", bool() },
    { "JobContext", STORAGE }, { "Command", str() }, { "ProgramPath", str() },
    { "RequirementsPath", str() },
  }) },
  -- v1.0.4 sends the resources as TotalAllocatedResources.
  { "Resources", RESOURCES, aliases = { "TotalAllocatedResources" } },
  { "Network", D.object({ { "Type", D.enum("Network") }, { "Domains", list(str()) } }) },
  -- seconds: a float in v1.0, an integer in v1.1; either is taken
  { "Timeout", num({ min = 0 }) },
  { "Inputs", list(STORAGE) },  -- "inputs" in v1.0.3
  { "Outputs", list(STORAGE) }, -- "outputs" in v1.0.3
  { "Annotations", list(str()) },
  { "NodeSelectors", list(D.object({ { "Key", str() }, { "Operator", str() },
                                      { "Values", list(str()) } })) },
  { "DoNotTrack", bool() },
  { "Deal", D.object({
    { "Concurrency", int() }, { "Confidence", int() }, { "MinBids", int() },
    { "TargetingMode", D.targeting() },
  }) },
})
M.SPEC = SPEC

local CLIENT_ID = { "ClientID", str({ check = client_id_check }), required = true }

local SCHEMAS = {
  submit = D.object({
    CLIENT_ID,
    { "APIVersion", str({ check = function(v)
        if not enums.api_version(v) then
          return nil, "is not a known API version: use one of "
            .. table.concat(enums.VERSION_NAMES, ", ")
        end
      end }), required = true,
      on = function(v, ctx) ctx.generation = enums.generation(enums.api_version(v)) end },
    { "Spec", SPEC, required = true },
  }, { after = function(out) out.APIVersion = enums.api_version(out.APIVersion) end }),
  cancel = D.object({ CLIENT_ID, { "JobID", str(), required = true }, { "Reason", str() } }),
  logs = D.object({
    CLIENT_ID, { "JobID", str(), required = true }, { "ExecutionID", str() },
    { "WithHistory", bool() }, { "Follow", bool() },
  }),
  approve = D.object({
    CLIENT_ID, { "JobID", str(), required = true },
    { "Response", D.object({ { "shouldBid", bool() }, { "shouldWait", bool() }, { "reason", str() } }),
      required = true },
  }),
  list = D.object({
    { "id", str() }, { "client_id", str() }, { "include_tags", list(str()) },
    { "exclude_tags", list(str()) }, { "max_jobs", int({ min = 0 }) }, { "return_all", bool() },
    { "sort_by", str() }, { "sort_reverse", bool() },
  }),
  states = D.object({ { "client_id", str() }, { "job_id", str(), required = true } }),
  events = D.object({
    { "client_id", str() }, { "job_id", str(), required = true },
    { "filters", D.object({
      { "exclude_execution_level", bool() }, { "exclude_job_level", bool() },
      { "since", int({ min = 0 }) }, { "execution_id", str() }, { "node_id", str() },
    }) },
  }),
}
SCHEMAS.results = SCHEMAS.states
M.KINDS = { "submit", "cancel", "logs", "approve", "list", "states", "results", "events" }

--- payload.decode(kind, value) -> table | nil, err
-- kind: "submit" | "cancel" | "logs" | "approve" (signed payloads) or
-- "list" | "states" | "results" | "events" (request bodies). value: the
-- decoded JSON (jobrt.json). err = {status = 400, field =, message =}.
function M.decode(kind, value)
  local schema = SCHEMAS[kind]
  if not schema then error("payload.decode: unknown kind " .. tostring(kind), 2) end
  return D.run(value, schema, "v1.1")
end

--- payload.read(kind, text) -> table | nil, err: the request body text of
-- an unsigned request (an empty body is an empty object, as Bacalhau's
-- clients may send none).
function M.read(kind, text)
  if type(text) ~= "string" then error("payload.read: text must be a string", 2) end
  if text:find("^%s*$") then text = "{}" end
  local v, why = json.decode(text)
  if v == nil then
    return nil, { status = 400, message = "the request body is not JSON: " .. tostring(why) }
  end
  return M.decode(kind, v)
end

--- payload.spelt(t, name) -> how the client spelt field name of t
M.spelt = D.spelt

return M
