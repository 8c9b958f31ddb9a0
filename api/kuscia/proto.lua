-- The KusciaAPI job messages (kusciaapi/job.proto and common.proto) as
-- data: each message is its fields in declaration order, which is the
-- order both encodings write them in. api/kuscia/decode.lua reads requests
-- with these tables, api/kuscia/encode.lua writes answers and watch events.
local M = {}

-- A field: {proto_name, kind[, msg = message name][, enum = enum name]
-- [, repeated = true]}. Kinds: string, bool, int32, int64, uint64, float,
-- enum, message, map (map<string, string>). The JSON name (lowerCamel) is
-- derived, as protoc derives it.
local function f(name, kind, opts)
  local field = { name = name, kind = kind }
  for k, v in pairs(opts or {}) do field[k] = v end
  field.json = name:gsub("_(%l)", string.upper)
  return field
end

local function list(kind, opts)
  opts = opts or {}
  opts.repeated = true
  return kind, opts
end

local MESSAGES = {
  RequestHeader = { f("custom_headers", "map") },
  Status = { f("code", "int32"), f("message", "string"), f("details", list("any")) },

  CreateJobRequest = {
    f("header", "message", { msg = "RequestHeader" }), f("job_id", "string"), f("initiator", "string"),
    f("max_parallelism", "int32"), f("tasks", list("message", { msg = "Task" })), f("custom_fields", "map"),
  },
  Task = {
    f("app_image", "string"), f("parties", list("message", { msg = "Party" })), f("alias", "string"),
    f("task_id", "string"), f("dependencies", list("string")), f("task_input_config", "string"),
    f("priority", "int32"), f("schedule_config", "message", { msg = "ScheduleConfig" }), f("tolerable", "bool"),
  },
  ScheduleConfig = {
    f("task_timeout_seconds", "int32"), f("resource_reserved_seconds", "int32"),
    f("resource_reallocation_interval_seconds", "int32"),
  },
  Party = {
    f("domain_id", "string"), f("role", "string"), f("resources", "message", { msg = "JobResource" }),
    f("bandwidth_limits", list("message", { msg = "BandwidthLimit" })),
  },
  JobResource = { f("cpu", "string"), f("memory", "string"), f("bandwidth", "string") },
  BandwidthLimit = { f("destination_id", "string"), f("limit_kbps", "uint64") },

  QueryJobRequest = { f("header", "message", { msg = "RequestHeader" }), f("job_id", "string") },
  DeleteJobRequest = { f("header", "message", { msg = "RequestHeader" }), f("job_id", "string") },
  -- Stop, suspend, restart and cancel share this shape.
  JobControlRequest = {
    f("header", "message", { msg = "RequestHeader" }), f("job_id", "string"), f("reason", "string"),
  },
  ApproveJobRequest = {
    f("job_id", "string"), f("result", "enum", { enum = "ApproveResult" }), f("reason", "string"),
  },
  BatchQueryJobStatusRequest = {
    f("header", "message", { msg = "RequestHeader" }), f("job_ids", list("string")),
  },

  -- Every answer but query's and batchQuery's carries only the job id.
  JobIdResponse = { f("status", "message", { msg = "Status" }), f("data", "message", { msg = "JobIdData" }) },
  JobIdData = { f("job_id", "string") },
  QueryJobResponse = {
    f("status", "message", { msg = "Status" }), f("data", "message", { msg = "QueryJobResponseData" }),
  },
  QueryJobResponseData = {
    f("job_id", "string"), f("initiator", "string"), f("max_parallelism", "int32"),
    f("tasks", list("message", { msg = "TaskConfig" })), f("status", "message", { msg = "JobStatusDetail" }),
    f("custom_fields", "map"),
  },
  TaskConfig = {
    f("app_image", "string"), f("parties", list("message", { msg = "Party" })), f("alias", "string"),
    f("task_id", "string"), f("dependencies", list("string")), f("task_input_config", "string"),
    f("priority", "int32"), f("schedule_config", "message", { msg = "ScheduleConfig" }),
  },
  JobStatusDetail = {
    f("state", "string"), f("err_msg", "string"), f("create_time", "string"), f("start_time", "string"),
    f("end_time", "string"), f("tasks", list("message", { msg = "TaskStatus" })),
    f("stage_status_list", list("message", { msg = "PartyStageStatus" })),
    f("approve_status_list", list("message", { msg = "PartyApproveStatus" })),
  },
  PartyStageStatus = { f("domain_id", "string"), f("state", "string") },
  PartyApproveStatus = { f("domain_id", "string"), f("state", "string") },
  TaskStatus = {
    f("task_id", "string"), f("state", "string"), f("err_msg", "string"), f("create_time", "string"),
    f("start_time", "string"), f("end_time", "string"), f("parties", list("message", { msg = "PartyStatus" })),
    f("alias", "string"), f("progress", "float"),
  },
  PartyStatus = {
    f("domain_id", "string"), f("state", "string"), f("err_msg", "string"),
    f("endpoints", list("message", { msg = "JobPartyEndpoint" })),
  },
  JobPartyEndpoint = { f("port_name", "string"), f("scope", "string"), f("endpoint", "string") },
  BatchQueryJobStatusResponse = {
    f("status", "message", { msg = "Status" }), f("data", "message", { msg = "BatchQueryData" }),
  },
  BatchQueryData = { f("jobs", list("message", { msg = "JobStatus" })) },
  JobStatus = { f("job_id", "string"), f("status", "message", { msg = "JobStatusDetail" }) },
  WatchJobEventResponse = {
    f("type", "enum", { enum = "EventType" }), f("object", "message", { msg = "JobStatus" }),
  },
}

M.ENUMS = {
  ApproveResult = { APPROVE_RESULT_UNKNOWN = 0, APPROVE_RESULT_ACCEPT = 1, APPROVE_RESULT_REJECT = 2 },
  EventType = { ADDED = 0, MODIFIED = 1, DELETED = 2, ERROR = 3, HEARTBEAT = 4 },
}

-- Per message, its fields by either JSON spelling.
for _, fields in pairs(MESSAGES) do
  local by = {}
  for _, field in ipairs(fields) do
    by[field.name] = field
    by[field.json] = field
  end
  fields.by_name = by
end

M.MESSAGES = MESSAGES

--- proto.message(name) -> the field list; an unknown name is a programming error.
function M.message(name)
  local m = MESSAGES[name]
  if not m then error("kuscia: no message " .. tostring(name), 2) end
  return m
end

return M
