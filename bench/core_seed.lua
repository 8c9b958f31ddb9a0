-- Seed a data directory with N jobs through jobrt.core (run by
-- bench/core_store.sh as `jobrt lua bench/core_seed.lua DIR N`).
local core = require("jobrt.core")
local dir, n = arg[1], tonumber(arg[2])
assert(core.open({ data_dir = dir }))
local have = core.count()
local owners = { "alice", "bob", "carol", "dave" }
for i = have + 1, n do
  local ok, err = core.submit({
    title = "seed " .. i, owner = owners[i % 4 + 1], surface = "native",
    tasks = { { alias = "a", command = { "true" } } },
  })
  if not ok then error(err) end
  if i % 20000 == 0 then core.durable() end
end
core.durable()
assert(core.close())
