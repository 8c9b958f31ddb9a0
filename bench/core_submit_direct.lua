-- CPU of jobrt.core.submit alone, without HTTP or a surface: `jobrt lua
-- bench/core_submit_direct.lua DATA_DIR N` submits N jobs of one sandboxed
-- task (image, network, inputs: what the executor checks) straight to the
-- core, committing every 50. Run it under `valgrind --tool=callgrind` with
-- two counts; the difference of the instruction totals over the difference
-- of the counts is the cost of one submit.
local core = require("jobrt.core")
local dir, n = arg[1], tonumber(arg[2] or "100")
assert(dir, "usage: core_submit_direct.lua DATA_DIR N")
assert(core.open({ data_dir = dir, node = { cpu = 4000, max_tasks = 4 },
                   sandbox = { network = "none", allow_host_paths = { "/srv" } } }))
for i = 1, n do
  assert(core.submit({
    title = "bench", owner = "bench", surface = "native", labels = { kind = "bench" },
    tasks = { {
      alias = "a", command = { "true" }, resources = { cpu = 100 },
      image = "host", network = { mode = "allow", domains = { "example.com" } },
      inputs = { { source = "inline", data = "x", target = "/inputs/x" },
                 { source = "url", url = "https://example.com/a.tif", max_bytes = 1000 } },
    } },
  }))
  if i % 50 == 0 then core.durable() end
end
core.durable()
core.close()
print(string.format("submitted %d", n))
