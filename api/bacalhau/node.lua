-- The node endpoints Bacalhau's CLI and SDK call besides the requester's:
-- version, node_info, healthz, livez, readyz, id, at the root and under
-- /api/v1 (v1.1's agent paths too). They describe this one node: what it
-- runs (engines, publishers, storage sources) and its capacity.
local core = require("jobrt.core")
local json = require("jobrt.json")

local M = {}

-- Both prefixes: v1.0.3 served the root and /api/v1.
local function both(r, method, path, handler)
  r:root(method, path, handler)
  r:root(method, "/api/v1" .. path, handler)
end

local ARCH = { x86_64 = "amd64", aarch64 = "arm64", armv7l = "arm", i686 = "386" }

local function version_info(host)
  return {
    major = "1", minor = "0",
    gitversion = "v1.0.3+jobrt." .. host.version,
    gitcommit = "", builddate = "",
    goos = host.system:lower(), goarch = ARCH[host.machine] or host.machine,
  }
end

local function capacity(cpu_milli, memory, gpu)
  return { CPU = cpu_milli / 1000, Memory = memory, Disk = 0, GPU = gpu }
end

function M.routes(r, s)
  local node = s.node
  local host = s.ctx.host

  local function version(_, res)
    res:json({ build_version_info = version_info(host) })
  end
  both(r, "POST", "/version", version)
  both(r, "GET", "/version", version)
  r:root("GET", "/api/v1/agent/version", function(_, res)
    local v = version_info(host)
    res:json({ Major = v.major, Minor = v.minor, GitVersion = v.gitversion, GitCommit = v.gitcommit,
      BuildDate = v.builddate, GOOS = v.goos, GOARCH = v.goarch })
  end)

  local function node_info(_, res)
    local n = core.node()
    local engines = { "Docker", "Noop" }
    if s.cfg.wasm then engines[#engines + 1] = "Wasm" end
    local publishers = { "Noop" }
    for name in pairs(s.publishers) do publishers[#publishers + 1] = name end
    table.sort(publishers)
    local sources = { "URLDownload", "Inline" }
    if #(s.ctx.sandbox.allow_host_paths or {}) > 0 then sources[#sources + 1] = "LocalDirectory" end
    res:json({
      PeerInfo = { ID = node.id, Addrs = json.array({}) },
      NodeType = "Requester",
      Labels = next(node.labels) and node.labels or json.object({}),
      ComputeNodeInfo = {
        ExecutionEngines = engines, Publishers = publishers, StorageSources = sources,
        Verifiers = { "Noop" },
        MaxCapacity = capacity(n.cpu, n.memory, n.gpu),
        -- The scheduler keeps what is in use to itself; the execution
        -- counts below say how busy the node is.
        AvailableCapacity = capacity(n.cpu, n.memory, n.gpu),
        MaxJobRequirements = capacity(n.cpu, n.memory, n.gpu),
        RunningExecutions = n.running, EnqueuedExecutions = n.ready,
      },
      BacalhauVersion = version_info(host),
    })
  end
  both(r, "GET", "/node_info", node_info)
  r:root("GET", "/api/v1/agent/node", node_info)

  both(r, "GET", "/healthz", function(_, res)
    local disk = host.disk()
    local mount = { All = 0, Used = 0, Free = 0 }
    if disk then mount = { All = disk.total, Used = disk.used, Free = disk.free } end
    res:json({ FreeSpace = { IPFSMount = mount, tmp = mount, root = mount } })
  end)
  local function ok(_, res) res:header("Content-Type", "text/plain; charset=utf-8") res:send("OK", 200) end
  both(r, "GET", "/livez", ok)
  both(r, "GET", "/readyz", ok)
  r:root("GET", "/api/v1/agent/alive", function(_, res) res:json({ Status = "OK" }) end)
  both(r, "GET", "/id", function(_, res)
    res:header("Content-Type", "text/plain; charset=utf-8")
    res:send(node.id, 200)
  end)
end

return M
