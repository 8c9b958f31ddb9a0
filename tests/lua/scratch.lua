-- A scratch folder for a Lua test file and the shell helpers around it:
-- run a command (sh), read its output (out), read and write files in the
-- folder (rd, wr). Each test file makes its own and removes it last.
local M = {}

local function sh(cmd)
  local ok = os.execute("(" .. cmd .. ") >/dev/null 2>&1")
  if not ok then error("command failed: " .. cmd, 2) end
end

local function out(cmd)
  local p = io.popen("(" .. cmd .. ") 2>/dev/null")
  local s = p:read("a")
  p:close()
  return s
end

--- scratch.new(name) -> s: s.dir (a new folder /tmp/jobrt-test-NAME-*),
-- s.sh(cmd), s.out(cmd), s.path(file), s.rd(file), s.wr(file, data),
-- s.remove() -> true once the folder is gone.
function M.new(name)
  local dir = out("mktemp -d /tmp/jobrt-test-" .. name .. "-XXXXXX"):gsub("%s+$", "")
  assert(dir:find("^/tmp/jobrt%-test%-"), "mktemp failed")
  local s = { dir = dir, sh = sh, out = out }
  function s.path(file) return dir .. "/" .. file end
  function s.rd(file)
    local f = assert(io.open(s.path(file), "rb"))
    local data = f:read("a")
    f:close()
    return data
  end
  function s.wr(file, data)
    local f = assert(io.open(s.path(file), "wb"))
    f:write(data)
    f:close()
  end
  function s.remove() return os.execute("rm -rf '" .. dir .. "'") end
  return s
end

return M
