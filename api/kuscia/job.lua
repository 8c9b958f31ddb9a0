-- A CreateJobRequest checked as Kuscia checks it, then as a core job: one
-- core task per (Kuscia task, party), the parties of a task sharing a
-- group, each party's process told its input and identity in its
-- environment and in /inputs/task_input_config.json. The request itself,
-- with what Kuscia fills in (task ids, defaults), is the job's doc, which
-- query echoes.
local json = require("jobrt.json")
local units = require("jobrt.units")

local M = {}

M.INPUT_FILE = "/inputs/task_input_config.json"
M.MAX_PARALLELISM, M.MAX_TASKS = 128, 128
-- Kuscia turns custom fields into Kubernetes labels: these are its limits.
M.CUSTOM_KEY_MAX, M.CUSTOM_VALUE_MAX = 38, 63
M.DEFAULT_TIMEOUT, M.DEFAULT_RESERVED, M.DEFAULT_REALLOCATION = 300, 30, 30

local INVALID = 11100

-- What an argv template may name ({{.NAME}}), besides the environment.
M.TEMPLATE_NAMES = {
  TASK_ID = true, TASK_ALIAS = true, TASK_INPUT_CONFIG = true, KUSCIA_JOB_ID = true,
  KUSCIA_TASK_ID = true, KUSCIA_DOMAIN_ID = true, KUSCIA_ROLE = true,
}
local TEMPLATE = "{{%s*%.?([%w_]+)%s*}}"

--- job.k8s_name(s) -> whether s is a name Kuscia takes for a job or task
-- id: lower-case letters, digits, '-' and '.', starting and ending with a
-- letter or digit, at most 63.
function M.k8s_name(s)
  return type(s) == "string" and #s >= 1 and #s <= 63 and s:find("^[a-z0-9]") ~= nil
    and s:find("[a-z0-9]$") ~= nil and s:find("[^a-z0-9.%-]") == nil
end

--- job.unknown_placeholders(argv) -> the {{.NAME}}s of an argv template
-- that name nothing the surface fills in, or nil when all are known.
function M.unknown_placeholders(argv)
  local bad
  for _, arg in ipairs(argv) do
    for name in arg:gmatch(TEMPLATE) do
      if not M.TEMPLATE_NAMES[name] then
        bad = bad or {}
        bad[#bad + 1] = name
      end
    end
  end
  return bad
end

local function refuse(code, fmt, ...)
  error({ kuscia_refusal = true, code = code, message = string.format(fmt, ...) }, 0)
end

-- s made safe as (part of) a core alias: letters, digits, '.', '-', '_'.
local function safe(s, max)
  s = s:gsub("[^%w%.%-_]", "_")
  if not s:find("^[%w_]") then s = "_" .. s end
  return s:sub(1, max)
end

local sorted_keys = require("jobrt.tables").sorted_keys

local function check_request(q)
  if q.job_id == "" then refuse(INVALID, "job id can not be empty") end
  if not M.k8s_name(q.job_id) then
    refuse(INVALID, 'Field "job_id" is invalid: "%s" must be at most 63 lower-case letters, digits, "-" or "."'
      .. ", starting and ending with a letter or digit", q.job_id)
  end
  if q.initiator == "" then refuse(INVALID, "initiator can not be empty") end
  if q.max_parallelism > M.MAX_PARALLELISM then
    refuse(INVALID, "max_parallelism %d is more than %d", q.max_parallelism, M.MAX_PARALLELISM)
  end
  if #q.tasks == 0 then refuse(INVALID, "tasks can not be empty") end
  if #q.tasks > M.MAX_TASKS then refuse(INVALID, "tasks: %d tasks, at most %d", #q.tasks, M.MAX_TASKS) end
  for i, t in ipairs(q.tasks) do
    if t.alias == "" then refuse(INVALID, "task alias can not be empty on tasks[%d]", i - 1) end
    if #t.parties == 0 then refuse(INVALID, "parties can not be empty on tasks[%d]", i - 1) end
    for j, p in ipairs(t.parties) do
      if p.domain_id == "" then
        refuse(INVALID, "party domain id can not be empty on tasks[%d].parties[%d]", i - 1, j - 1)
      end
    end
  end
  for _, k in ipairs(sorted_keys(q.custom_fields)) do
    if #k > M.CUSTOM_KEY_MAX or k == "" then
      refuse(INVALID, 'custom_fields: key "%s" must be 1 to %d characters', k, M.CUSTOM_KEY_MAX)
    end
    if #q.custom_fields[k] > M.CUSTOM_VALUE_MAX then
      refuse(INVALID, 'custom_fields["%s"]: the value is longer than %d characters', k, M.CUSTOM_VALUE_MAX)
    end
  end
end

-- Aliases unique, dependencies known, no cycle: -> alias -> index.
local function check_dag(tasks)
  local index = {}
  for i, t in ipairs(tasks) do
    if index[t.alias] then
      refuse(INVALID, 'tasks[%d].alias: "%s" is also the alias of tasks[%d]; aliases must be unique',
        i - 1, t.alias, index[t.alias] - 1)
    end
    index[t.alias] = i
  end
  for i, t in ipairs(tasks) do
    for _, d in ipairs(t.dependencies) do
      if d ~= "" and not index[d] then
        refuse(INVALID, 'tasks[%d].dependencies: "%s" is not the alias of a task of this job', i - 1, d)
      end
    end
  end
  -- Depth-first, colouring: 1 on the path, 2 done; the path names the cycle.
  local colour, path = {}, {}
  local function visit(i)
    colour[i] = 1
    path[#path + 1] = tasks[i].alias
    for _, d in ipairs(tasks[i].dependencies) do
      local k = index[d]
      if k and colour[k] == 1 then
        local from
        for n, a in ipairs(path) do if a == d and not from then from = n end end
        local cycle = table.move(path, from, #path, 1, {})
        cycle[#cycle + 1] = d
        refuse(INVALID, "tasks: the dependencies form a cycle: %s", table.concat(cycle, " -> "))
      elseif k and not colour[k] then
        visit(k)
      end
    end
    path[#path] = nil
    colour[i] = 2
  end
  for i = 1, #tasks do
    if not colour[i] then visit(i) end
  end
  return index
end

-- A party's cpu and memory: its own (Kubernetes quantities), else the app
-- image's, else none.
local function resources_of(party, app, where)
  local cpu, memory = app.resources and app.resources.cpu or 0, app.resources and app.resources.memory or 0
  local r = party.resources
  if r and r.cpu ~= "" then
    local n, err = units.cpu(r.cpu)
    if not n then refuse(INVALID, "%s.resources.cpu: %s", where, err) end
    cpu = n
  end
  if r and r.memory ~= "" then
    local n, err = units.bytes(r.memory)
    if not n then refuse(INVALID, "%s.resources.memory: %s", where, err) end
    memory = n
  end
  return { cpu = cpu, memory = memory }
end

local function fill(argv, vars)
  local out = {}
  for i, arg in ipairs(argv) do
    out[i] = arg:gsub(TEMPLATE, function(name) return vars[name] end)
  end
  return out
end

local function echo_party(p)
  local limits = json.array({})
  for i, b in ipairs(p.bandwidth_limits) do
    limits[i] = { destination_id = b.destination_id, limit_kbps = b.limit_kbps }
  end
  return {
    domain_id = p.domain_id, role = p.role, bandwidth_limits = limits,
    resources = p.resources and { cpu = p.resources.cpu, memory = p.resources.memory,
                                  bandwidth = p.resources.bandwidth } or nil,
  }
end

-- The schedule config as Kuscia stores it: zero or negative fields take
-- their defaults.
local function schedule_of(sc)
  if not sc then return nil end
  local function pos(v, d) return v > 0 and v or d end
  return {
    task_timeout_seconds = pos(sc.task_timeout_seconds, M.DEFAULT_TIMEOUT),
    resource_reserved_seconds = pos(sc.resource_reserved_seconds, M.DEFAULT_RESERVED),
    resource_reallocation_interval_seconds = pos(sc.resource_reallocation_interval_seconds,
      M.DEFAULT_REALLOCATION),
  }
end

--- job.to_job(q, opts) -> core job | nil, code, message. q: a decoded
-- CreateJobRequest. opts: domains ({name = true}: hosted here),
-- app_images (name -> {image, command, resources = {cpu, memory}, env}),
-- task_id(job_id, index) -> a generated task id.
function M.to_job(q, opts)
  local ok, job = pcall(function()
    check_request(q)
    local index = check_dag(q.tasks)
    local domains, images = opts.domains or {}, opts.app_images or {}
    local hosted = sorted_keys(domains)
    local task_ids, groups, group_of, aliases = {}, {}, {}, {}
    local doc_tasks, units_of = json.array({}), {}
    for i, t in ipairs(q.tasks) do
      local where = string.format("tasks[%d]", i - 1)
      local task_id = t.task_id
      if task_id == "" then
        task_id = opts.task_id(q.job_id, i)
      elseif not M.k8s_name(task_id) then
        refuse(INVALID, 'Field "%s.task_id" is invalid: "%s" must be at most 63 lower-case letters, digits,'
          .. ' "-" or "."', where, task_id)
      end
      if task_ids[task_id] then
        refuse(INVALID, '%s.task_id: "%s" is also the task_id of tasks[%d]', where, task_id, task_ids[task_id] - 1)
      end
      task_ids[task_id] = i
      local app = images[t.app_image]
      if not app then
        local known = sorted_keys(images)
        refuse(INVALID, '%s.app_image: "%s" is not an app image of this deployment (surfaces.kuscia.app_images: %s)',
          where, t.app_image, #known > 0 and table.concat(known, ", ") or "none")
      end
      -- The core's names: the group of the task's parties, one alias each.
      local group = safe(t.alias, 36)
      for n = 1, #q.tasks do
        if not groups[group] then break end
        group = safe(t.alias, 28) .. "_" .. i .. (n > 1 and ("_" .. n) or "")
      end
      groups[group] = true
      group_of[i] = group
      units_of[i] = {}
      for j, p in ipairs(t.parties) do
        if not domains[p.domain_id] then
          refuse(INVALID, '%s.parties[%d].domain_id: domain "%s" is not hosted here (surfaces.kuscia.domains: %s);'
            .. " jobs across nodes are not supported", where, j - 1, p.domain_id,
            #hosted > 0 and table.concat(hosted, ", ") or "none")
        end
        local alias = group .. "." .. safe(p.domain_id, 20)
        if aliases[alias] then alias = alias .. "." .. j end
        aliases[alias] = true
        units_of[i][j] = { alias = alias, resources = resources_of(p, app, string.format("%s.parties[%d]", where, j - 1)) }
      end
      local deps = json.array({})
      for _, d in ipairs(t.dependencies) do deps[#deps + 1] = d end
      local parties = json.array({})
      for j, p in ipairs(t.parties) do parties[j] = echo_party(p) end
      local unit_aliases = json.array({})
      for j, u in ipairs(units_of[i]) do unit_aliases[j] = u.alias end
      doc_tasks[i] = {
        app_image = t.app_image, parties = parties, alias = t.alias, task_id = task_id,
        dependencies = deps, task_input_config = t.task_input_config, priority = t.priority,
        schedule_config = schedule_of(t.schedule_config), tolerable = t.tolerable, units = unit_aliases,
      }
    end
    local mp = q.max_parallelism > 0 and q.max_parallelism or 1
    local tasks = {}
    for i, t in ipairs(q.tasks) do
      local dt, app = doc_tasks[i], images[t.app_image]
      local deps = {}
      for _, d in ipairs(t.dependencies) do
        for _, u in ipairs(units_of[index[d]] or {}) do deps[#deps + 1] = u.alias end
      end
      for j, p in ipairs(t.parties) do
        local u = units_of[i][j]
        local vars = {
          TASK_INPUT_CONFIG = t.task_input_config, KUSCIA_DOMAIN_ID = p.domain_id, KUSCIA_ROLE = p.role,
          KUSCIA_JOB_ID = q.job_id, KUSCIA_TASK_ID = dt.task_id, TASK_ID = dt.task_id, TASK_ALIAS = t.alias,
        }
        local env = {}
        for k, v in pairs(app.env or {}) do env[k] = v end
        for _, k in ipairs({ "TASK_INPUT_CONFIG", "KUSCIA_DOMAIN_ID", "KUSCIA_ROLE", "KUSCIA_JOB_ID",
                             "KUSCIA_TASK_ID" }) do
          env[k] = vars[k]
        end
        local timeout
        if dt.schedule_config then timeout = dt.schedule_config.task_timeout_seconds end
        tasks[#tasks + 1] = {
          alias = u.alias, group = group_of[i], deps = deps,
          priority = t.priority, tolerable = t.tolerable, image = app.image or "host",
          command = fill(app.command, vars), env = env,
          inputs = { { source = "inline", data = t.task_input_config, target = M.INPUT_FILE } },
          resources = u.resources, timeout = timeout,
        }
      end
    end
    local labels = {}
    for k, v in pairs(q.custom_fields) do labels[k] = v end
    return {
      id = q.job_id, title = q.job_id, labels = labels, max_parallelism = mp,
      doc = {
        initiator = q.initiator, max_parallelism = mp, custom_fields = json.object(labels), tasks = doc_tasks,
      },
      tasks = tasks,
    }
  end)
  if ok then return job end
  if type(job) == "table" and job.kuscia_refusal then return nil, job.code, job.message end
  error(job, 0)
end

return M
