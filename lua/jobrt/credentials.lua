-- The command-line client's credentials file (jobrt login writes it, the
-- jobs commands read it): ~/.config/jobrt/credentials, or under
-- $XDG_CONFIG_HOME; "key: value" lines (url, user, token, expires_at, cert,
-- key), readable by its owner only.
local uv = require("luv")

local M = {}

local function config_dir()
  local xdg = os.getenv("XDG_CONFIG_HOME")
  if xdg and xdg:sub(1, 1) == "/" then return xdg .. "/jobrt" end
  local home = os.getenv("HOME")
  if not home or home == "" then return nil end
  return home .. "/.config/jobrt"
end

-- path() -> the file's path | nil when there is no home to keep it in.
function M.path()
  local dir = config_dir()
  return dir and (dir .. "/credentials") or nil
end

-- read() -> {url =, token =, ...}; empty when there is no file.
function M.read()
  local path = M.path()
  local f = path and io.open(path, "r")
  if not f then return {} end
  local c = {}
  for line in f:lines() do
    local k, v = line:match("^%s*([%w_]+):%s*(.-)%s*$")
    if k then c[k] = v end
  end
  f:close()
  return c
end

local function mkdir_p(path)
  local sofar = ""
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    local ok, err, code = uv.fs_mkdir(sofar, 448) -- 0700
    if not ok and code ~= "EEXIST" then return nil, err end
  end
  return true
end

-- write(c) -> path | nil, err. A temporary file created 0600 is renamed
-- over the old one, so the token is never readable by others, not even
-- for a moment.
function M.write(c)
  local path = M.path()
  if not path then return nil, "HOME is not set: nowhere to keep the credentials" end
  local ok, err = mkdir_p(path:match("^(.*)/[^/]+$"))
  if not ok then return nil, err end
  local lines = { "# written by jobrt login; keep it private (mode 0600)" }
  for _, k in ipairs({ "url", "user", "token", "expires_at", "cert", "key" }) do
    if c[k] then lines[#lines + 1] = k .. ": " .. c[k] end
  end
  local tmp = path .. ".tmp"
  uv.fs_unlink(tmp)
  local fd
  fd, err = uv.fs_open(tmp, "wx", 384) -- O_EXCL, 0600
  if not fd then return nil, err end
  uv.fs_fchmod(fd, 384)
  local text = table.concat(lines, "\n") .. "\n"
  local n, werr = uv.fs_write(fd, text, 0)
  uv.fs_close(fd)
  if n ~= #text then
    uv.fs_unlink(tmp)
    return nil, werr or "short write"
  end
  ok, err = uv.fs_rename(tmp, path)
  if not ok then return nil, err end
  return path
end

return M
