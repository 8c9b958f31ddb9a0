-- api.kuscia.decode: requests read as Kuscia's gateway reads them (proto
-- JSON: both spellings, unknown fields ignored, integers and enums in
-- either form), and the watch request as Go's encoding/json reads it.
local decode = require("api.kuscia.decode")
local json = require("jobrt.json")

local function ok(t, name, body)
  local q, err = decode.request(name, body)
  t.ok(q, err and err.message)
  return q or {}
end

local function bad(t, name, body, code, pattern)
  local q, err = decode.request(name, body)
  t.eq(q, nil, body)
  t.eq(err and err.code, code, body)
  t.match(err and err.message, pattern)
end

return {
  { "snake_case and lowerCamelCase, defaults for what is absent, unknown fields ignored", function(t)
    local a = ok(t, "CreateJobRequest", '{"job_id":"j","max_parallelism":2,"tasks":[{"app_image":"x","task_input_config":"{}",'
      .. '"parties":[{"domain_id":"alice","role":"r"}]}],"extra":{"deep":[1]}}')
    local b = ok(t, "CreateJobRequest", '{"jobId":"j","maxParallelism":2,"tasks":[{"appImage":"x","taskInputConfig":"{}",'
      .. '"parties":[{"domainId":"alice","role":"r","unknown":1}]}]}')
    t.eq(a, b)
    t.eq(a.job_id, "j")
    t.eq(a.initiator, "")
    t.eq(a.custom_fields, {})
    t.eq(a.header, nil)
    local task = a.tasks[1]
    t.eq({ task.alias, task.priority, task.tolerable, task.schedule_config, #task.dependencies },
      { "", 0, false, nil, 0 })
    t.ok(json.is_array(task.dependencies), "lists stay lists")
    t.eq(task.parties[1].resources, nil)
    t.eq(#task.parties[1].bandwidth_limits, 0)
  end },

  { "integers as numbers or strings, within their type's range", function(t)
    t.eq(ok(t, "CreateJobRequest", '{"max_parallelism":"7"}').max_parallelism, 7)
    t.eq(ok(t, "CreateJobRequest", '{"max_parallelism":7.0}').max_parallelism, 7)
    t.eq(ok(t, "CreateJobRequest", '{"max_parallelism":"1e2"}').max_parallelism, 100)
    t.eq(ok(t, "CreateJobRequest", '{"max_parallelism":-2147483648}').max_parallelism, -2147483648)
    bad(t, "CreateJobRequest", '{"max_parallelism":2147483648}', 11100, "int32 field max_parallelism: 2147483648")
    bad(t, "CreateJobRequest", '{"maxParallelism":1.5}', 11100, "int32 field maxParallelism: 1.5")
    bad(t, "CreateJobRequest", '{"max_parallelism":"0x10"}', 11100, 'max_parallelism: "0x10"')
    bad(t, "CreateJobRequest", '{"max_parallelism":true}', 11100, "max_parallelism: true")
    bad(t, "CreateJobRequest", '{"tasks":[{"priority":"high"}]}', 11100, 'tasks%[0%]%.priority: "high"')
    local limit = '{"tasks":[{"parties":[{"bandwidth_limits":[{"limit_kbps":%s}]}]}]}'
    local function kbps(v)
      return ok(t, "CreateJobRequest", limit:format(v)).tasks[1].parties[1].bandwidth_limits[1].limit_kbps
    end
    t.eq(kbps("1000"), 1000)
    t.eq(kbps('"9007199254740993"'), 9007199254740993)
    t.eq(kbps('"9223372036854775807"'), math.maxinteger)
    bad(t, "CreateJobRequest", limit:format("-1"), 11100, "uint64 field tasks%[0%]%.parties%[0%]%.bandwidth_limits%[0%]%.limit_kbps")
    bad(t, "CreateJobRequest", limit:format('"99999999999999999999"'), 11100, "limit_kbps")
    t.eq(ok(t, "CreateJobRequest", '{"tasks":[{"scheduleConfig":{"taskTimeoutSeconds":"30"}}]}').tasks[1]
      .schedule_config, { task_timeout_seconds = 30, resource_reserved_seconds = 0,
                          resource_reallocation_interval_seconds = 0 })
  end },

  { "enums by name or number; an unknown name is the default", function(t)
    t.eq(ok(t, "ApproveJobRequest", '{"job_id":"j","result":"APPROVE_RESULT_ACCEPT"}').result, 1)
    t.eq(ok(t, "ApproveJobRequest", '{"job_id":"j","result":"APPROVE_RESULT_REJECT"}').result, 2)
    t.eq(ok(t, "ApproveJobRequest", '{"job_id":"j","result":2}').result, 2)
    -- A number in a string is no enum name: discarded, as the gateway does.
    t.eq(ok(t, "ApproveJobRequest", '{"job_id":"j","result":"2"}').result, 0)
    t.eq(ok(t, "ApproveJobRequest", '{"job_id":"j","result":"NOPE"}').result, 0)
    t.eq(ok(t, "ApproveJobRequest", '{"jobId":"j"}').result, 0)
    bad(t, "ApproveJobRequest", '{"result":true}', 11100, "result")
  end },

  { "types, nulls, lists and maps", function(t)
    local q = ok(t, "CreateJobRequest", '{"job_id":null,"tasks":null,"custom_fields":{"a":"b"},"header":null}')
    t.eq({ q.job_id, #q.tasks, q.custom_fields.a }, { "", 0, "b" })
    bad(t, "CreateJobRequest", '{"job_id":5}', 11100, "string field job_id: 5")
    bad(t, "CreateJobRequest", '{"tasks":{}}', 11100, "repeated message field tasks")
    bad(t, "CreateJobRequest", '{"tasks":[null]}', 11100, "tasks%[0%]: null in a list")
    bad(t, "CreateJobRequest", '{"tasks":[5]}', 11100, "tasks%[0%] must be a JSON object")
    bad(t, "CreateJobRequest", '{"custom_fields":{"a":1}}', 11100, "custom_fields%.a")
    bad(t, "CreateJobRequest", '{"custom_fields":{"a":null}}', 11100, "custom_fields%.a")
    bad(t, "CreateJobRequest", '{"tasks":[{"tolerable":"yes"}]}', 11100, "bool field tasks%[0%]%.tolerable")
    bad(t, "CreateJobRequest", '{"job_id":"a","jobId":"b"}', 11100, 'job_id is given twice %(as "jobId" and "job_id"%)')
    bad(t, "QueryJobRequest", '{"job_id":"\255"}', 11100, "invalid UTF%-8 in string field job_id")
    t.eq(ok(t, "BatchQueryJobStatusRequest", '{"jobIds":["a","b"]}').job_ids, { "a", "b" })
  end },

  { "a body that is not a JSON object is 11101; an empty one is an empty request", function(t)
    bad(t, "QueryJobRequest", "job_id=x", 11101, "not JSON")
    bad(t, "QueryJobRequest", '{"job_id":', 11101, "not JSON")
    bad(t, "QueryJobRequest", "[1]", 11101, "must be a JSON object")
    bad(t, "QueryJobRequest", '"x"', 11101, "must be a JSON object")
    t.eq(ok(t, "QueryJobRequest", "").job_id, "")
    t.eq(ok(t, "QueryJobRequest", "  \n").job_id, "")
  end },

  { "the watch request: snake_case only, any case, a whole number", function(t)
    t.eq(decode.watch(""), { timeout_seconds = 0 })
    t.eq(decode.watch('{"timeout_seconds":30}'), { timeout_seconds = 30 })
    t.eq(decode.watch('{"TIMEOUT_SECONDS":30,"other":[1]}'), { timeout_seconds = 30 })
    t.eq(decode.watch('{"timeoutSeconds":30}'), { timeout_seconds = 0 })
    t.eq(decode.watch('{"timeout_seconds":-5}'), { timeout_seconds = -5 })
    t.eq(decode.watch('{"timeout_seconds":null,"header":{"custom_headers":{"a":"b"}}}'), { timeout_seconds = 0 })
    local function refused(body, pattern)
      local q, err = decode.watch(body)
      t.eq(q, nil, body)
      t.match(err, pattern)
    end
    refused('{"timeout_seconds":"30"}', "timeout_seconds")
    refused('{"timeout_seconds":1.5}', "timeout_seconds")
    refused('{"header":[1]}', "header")
    refused('{"header":{"custom_headers":{"a":1}}}', "custom_headers")
    refused("nope", "not JSON")
  end },
}
