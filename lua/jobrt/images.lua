-- The image store from Lua: opening it for a deployment (cfg.data_dir,
-- cfg.images), its slow operations as waits inside a coroutine (they run on
-- the thread pool), reference parsing for pulls, and what a surface asks
-- of an image name: is it in the store, in sandbox.images, or pullable.
local async = require("jobrt.async")
local image = require("jobrt.image")

local M = {}

-- One store handle per data directory and process.
local open_stores = {}

-- open(cfg) -> store | nil, err
function M.open(cfg)
  local dir = cfg.data_dir or "./jobrt-data"
  if open_stores[dir] then return open_stores[dir] end
  local opts = cfg.images or {}
  local store, err = image.open(dir, { root = opts.root, max_image_size = opts.max_image_size,
                                       max_store_size = opts.max_store_size })
  if not store then return nil, err end
  open_stores[dir] = store
  return store
end

-- The thread-pool operations, waited for: import(store, path, name),
-- install(store, name, manifest, source), remove(store, name), gc(store).
local function waited(method)
  return function(store, ...)
    local args = table.pack(...)
    return async.wait(function(wake)
      args[args.n + 1] = function(...) wake(...) end
      store[method](store, table.unpack(args, 1, args.n + 1))
    end)
  end
end

M.import = waited("import")
M.install = waited("install")
M.remove = waited("remove")
M.gc = waited("gc")

-- parse_ref("busybox:1.36") -> {host = "docker.io", repo = "library/busybox",
-- ref = "1.36", name = "busybox:1.36"} | nil, err. The first component is
-- a registry host when it has a '.' or ':' or is "localhost" (Docker's rule).
function M.parse_ref(s)
  if type(s) ~= "string" or not image.name_valid(s) then
    return nil, string.format("%q is not an image reference (e.g. busybox:1.36 or"
      .. " registry.example:5000/team/app:1)", tostring(s))
  end
  local name = image.name_normal(s)
  local path, ref = name:match("^(.-)@(sha256:%x+)$")
  if not path then path, ref = name:match("^(.*):([%w_][%w_.-]*)$") end
  local first, rest = path:match("^([^/]+)/(.+)$")
  local host
  if first and (first:find("[.:]") or first == "localhost") then
    host, path = first, rest
  else
    host = "docker.io"
    if not path:find("/", 1, true) then path = "library/" .. path end
  end
  return { host = host, repo = path, ref = ref, name = name }
end

-- The registry entry of cfg.images.registries for host, or nil.
function M.registry(cfg, host)
  for _, r in ipairs((cfg.images or {}).registries or {}) do
    if r.host == host then return r end
  end
  return nil
end

-- How a task's image name resolves: "store", "sandbox" (sandbox.images),
-- "pull" (not here, but images.pull is on_demand and its registry is
-- listed), or nil with a sentence saying why not.
function M.resolve(cfg, store, name)
  if type(name) ~= "string" then return nil, "the image must be a name" end
  local sb = (cfg.sandbox or {}).images or {}
  if name ~= "host" and store and image.name_valid(name) and store:get(name) then return "store" end
  if sb[name] then return "sandbox" end
  local pull = (cfg.images or {}).pull
  if pull == "on_demand" and image.name_valid(name) then
    local r = M.parse_ref(name)
    if r and M.registry(cfg, r.host) then return "pull" end
  end
  local known = {}
  for k in pairs(sb) do known[#known + 1] = k end
  table.sort(known)
  return nil, string.format("%q is neither in the image store (`jobrt images list`) nor in"
    .. " sandbox.images (%s)%s", name, table.concat(known, ", "),
    pull == "on_demand" and "; its registry is not in images.registries" or "")
end

return M
