-- Read-only access to the files a task left in its outputs folder
-- (DATA/jobs/<job>/<task>/outputs), for surfaces and publishers that serve
-- results. Names are single path components; links are never followed.
-- Operational failures return nil, message, CODE.
local uv = require("luv")

local M = {}

local Outputs = {}
Outputs.__index = Outputs

-- new(data_dir) -> outputs
function M.new(data_dir)
  return setmetatable({ root = (data_dir or "."):gsub("/$", "") .. "/jobs" }, Outputs)
end

local function component(s)
  return type(s) == "string" and s ~= "" and s ~= "." and s ~= ".." and not s:find("[/%z]")
end

function Outputs:dir(job, task)
  if not component(job) or not component(task) then return nil end
  return self.root .. "/" .. job .. "/" .. task .. "/outputs"
end

--- o:list(job, task) -> { {name =, size =}, ... } (regular files at the top
-- level, sorted by name; empty when the task left none)
function Outputs:list(job, task)
  local dir = self:dir(job, task)
  if not dir then return nil, "invalid job or task name", "INVALID" end
  local files = {}
  local scan = uv.fs_scandir(dir)
  if not scan then return files end
  while true do
    local name = uv.fs_scandir_next(scan)
    if not name then break end
    local st = uv.fs_lstat(dir .. "/" .. name)
    if st and st.type == "file" then files[#files + 1] = { name = name, size = st.size } end
  end
  table.sort(files, function(a, b) return a.name < b.name end)
  return files
end

--- o:read(job, task, name[, max]) -> data | nil, message, CODE
-- "NOT_FOUND" for a missing (or non-regular) file, "TOO_LARGE" beyond max.
function Outputs:read(job, task, name, max)
  local dir = self:dir(job, task)
  if not dir or not component(name) then return nil, "invalid file name", "INVALID" end
  local path = dir .. "/" .. name
  local st = uv.fs_lstat(path)
  if not st or st.type ~= "file" then return nil, "no such file: " .. name, "NOT_FOUND" end
  if max and st.size > max then return nil, "file too large: " .. name, "TOO_LARGE" end
  local fd, err = uv.fs_open(path, "r", 0)
  if not fd then return nil, tostring(err), "SYSTEM" end
  local parts, off = {}, 0
  while off < st.size do
    local chunk = uv.fs_read(fd, math.min(st.size - off, 1024 * 1024), off)
    if not chunk or chunk == "" then break end
    parts[#parts + 1] = chunk
    off = off + #chunk
  end
  uv.fs_close(fd)
  return table.concat(parts)
end

-- A writer through the thread pool (inside a coroutine), for derived().
local function file_writer(fd)
  local async = require("jobrt.async")
  local off = 0
  return {
    write = function(_, data)
      local n = async.wait(function(wake)
        local req = uv.fs_write(fd, data, off, function(err, written) wake(not err and written or nil) end)
        if not req then wake(nil) end
      end)
      if n ~= #data then return false end
      off = off + n
      return true
    end,
  }
end

--- o:derived(job, task, name, produce) -> path, size | nil, message:
-- a file made from a task's results (e.g. an archive for a publisher to
-- upload), kept beside its outputs (DATA/jobs/<job>/<task>/<name>) and
-- written once: produce(writer) calls writer:write(bytes) -> true|false
-- and returns true when all went well. Call it from a coroutine.
function Outputs:derived(job, task, name, produce)
  local dir = self:dir(job, task)
  if not dir or not component(name) or name == "outputs" then return nil, "invalid name" end
  local path = dir:gsub("/outputs$", "") .. "/" .. name
  local st = uv.fs_stat(path)
  if st then return path, st.size end
  local tmp = path .. ".tmp"
  local fd, err = uv.fs_open(tmp, "w", 420) -- 0644
  if not fd then return nil, tostring(err) end
  local ok, good = pcall(produce, file_writer(fd))
  uv.fs_close(fd)
  if not ok or not good then
    uv.fs_unlink(tmp)
    return nil, ok and ("cannot write " .. tmp) or tostring(good)
  end
  local renamed, rerr = uv.fs_rename(tmp, path)
  if not renamed then return nil, tostring(rerr) end
  st = uv.fs_stat(path)
  return path, st and st.size or 0
end

return M
