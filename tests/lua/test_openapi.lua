-- The native API's OpenAPI document (api/native/openapi.json) against the
-- code: every route the surface registers is in the document and every
-- path of the document is a route; the job model's fields are the
-- document's. (tests/e2e/api_reference.test.mjs checks real answers.)
local json = require("jobrt.json")
local model = require("jobrt.model")
local plugins = require("jobrt.plugins")
local runtime = require("jobrt.runtime")

local function document()
  return assert(json.decode(assert(runtime.embedded("api/native/openapi.json"))))
end

-- The routes api/native registers: {"GET /jobs/{job_id}" = true, ...};
-- those outside the mount (r:root) are marked root.
local function registered()
  local mod = assert(plugins.new({}):load("api.native"))
  local seen = {}
  local r = {}
  local function add(root)
    return function(_, method, template) seen[method:upper() .. " " .. template] = root and "root" or "mount" end
  end
  r.add, r.root = add(false), add(true)
  for _, m in ipairs({ "get", "post", "put", "patch", "delete" }) do
    r[m] = function(self, template) return r.add(self, m, template) end
  end
  mod.routes(r, { fail = function() end, mount = "/jobrt/v1" })
  return seen
end

local METHODS = { get = true, post = true, put = true, patch = true, delete = true }

local function documented(doc)
  local out = {}
  for path, item in pairs(doc.paths) do
    local root = item.servers and item.servers[1] and item.servers[1].url == "/"
    for m in pairs(item) do
      if METHODS[m] then out[m:upper() .. " " .. path] = root and "root" or "mount" end
    end
  end
  return out
end

local function keys(t, skip)
  local out = {}
  for k, v in pairs(t) do
    if not (skip and skip(k, v)) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

local function writable(fields)
  return keys(fields, function(_, v) return v.type == "readonly" end)
end

return {
  { "the document is OpenAPI 3.1 with both auth schemes", function(t)
    local doc = document()
    t.eq(doc.openapi, "3.1.0")
    t.eq(doc.servers[1].url, "/jobrt/v1")
    t.eq(keys(doc.components.securitySchemes), { "basic", "bearer" })
    t.eq(doc.components.securitySchemes.basic.scheme, "basic")
    t.eq(doc.components.securitySchemes.bearer.scheme, "bearer")
  end },

  { "every registered route is documented, and every documented path is a route", function(t)
    local routes, doc = registered(), documented(document())
    t.ok(next(routes) ~= nil, "the surface registered routes")
    for route, where in pairs(routes) do
      t.eq(doc[route], where, "documented: " .. route)
    end
    for route, where in pairs(doc) do
      t.eq(routes[route], where, "registered: " .. route)
    end
  end },

  { "every operation lists a 2xx answer, and errors use the Error shape", function(t)
    for path, item in pairs(document().paths) do
      for m, op in pairs(item) do
        if METHODS[m] then
          local ok = false
          for status, r in pairs(op.responses) do
            if status:match("^2") then ok = true end
            if status:match("^[45]") and item.servers == nil then
              t.match(r["$ref"] or "", "^#/components/responses/", m .. " " .. path .. " " .. status)
            end
          end
          t.ok(ok, m .. " " .. path .. " has a 2xx answer")
          t.ok(type(op.operationId) == "string", m .. " " .. path .. " has an operationId")
        end
      end
    end
  end },

  { "the job model's fields are the document's", function(t)
    local s = document().components.schemas
    local job_in = keys(s.JobInput.properties, function(k) return k == "start" or k == "owner" end)
    t.eq(job_in, writable(model.MODEL.job), "JobInput")
    t.eq(keys(s.TaskInput.properties), writable(model.MODEL.task), "TaskInput")
    t.eq(keys(s.Input.properties), writable(model.MODEL.input), "Input")
    t.eq(keys(s.Output.properties), writable(model.MODEL.output), "Output")
    t.eq(keys(s.TaskInput.properties.resources.properties), { "cpu", "disk", "gpu", "memory" })
    -- Answers carry every field of the model (and the runtime's own: tasks' attempt).
    for _, k in ipairs(keys(model.MODEL.job)) do
      t.ok(s.Job.properties[k] ~= nil, "Job answers may carry " .. k)
    end
    for _, k in ipairs(keys(model.MODEL.task)) do
      t.ok(s.Task.properties[k] ~= nil, "Task answers may carry " .. k)
    end
  end },
}
