-- The estimators: price_table's prices by surface and by image, and
-- estimate.history's median of the owner's finished jobs of the same shape
-- (on a real core), which says it is an estimate.
local core = require("jobrt.core")
local plugins = require("jobrt.plugins")
local submit = require("jobrt.submit")

local function estimator(t, entry)
  local mod, opts = plugins.new({}):plugin({ e = entry }, "e")
  t.ok(mod, opts)
  return mod, opts
end

local function job(image, surface)
  return { surface = surface, tasks = { { alias = "a", image = image, timeout = 10,
                                          resources = { cpu = 1000, memory = 1024 * 1024 * 1024 } } } }
end

return {
  { "price_table: an image's price, else the surface's, else the base", function(t)
    local mod, opts = estimator(t, { use = "estimate.price_table", currency = "EUR", cpu_second = 1,
      gib_second = 0, output_byte = 0, base_seconds = 10, seconds_per_node = 0,
      surfaces = { openeo = { cpu_second = 2 } }, images = { gpu = { cpu_second = 5 } } })
    local function costs(image, surface)
      return mod.estimate(job(image, surface), { options = opts, surface = surface }).costs
    end
    t.eq(costs("host", "native"), 10, "base: 1 cpu x 10 s x 1")
    t.eq(costs("host", "openeo"), 20, "the surface's price")
    t.eq(costs("gpu", "openeo"), 50, "the image's price wins")
    t.eq(mod.estimate(job("host", "native"), { options = opts }).currency, "EUR")
    local _, err = plugins.new({}):plugin({ e = { use = "estimate.price_table", images = { x = { cpu_secnd = 1 } } } }, "e")
    t.match(err, 'images.x.cpu_secnd: unknown key %(did you mean "cpu_second"%?%)')
  end },

  { "history: the median of the owner's finished jobs of the same shape, said to be an estimate", function(t)
    local dir = os.tmpname()
    os.remove(dir)
    t.ok(core.open({ data_dir = dir, node = { cpu = 4000, max_tasks = 4 } }))
    t.cleanup = function()
      core.close()
      os.execute("rm -rf '" .. dir .. "'")
    end
    local mod, opts = estimator(t, { use = "estimate.history", samples = 3, cpu_second = 1, currency = "EUR" })
    local p = assert(submit.new({ surface = "test", config = {}, estimator = false, plugin = function() end }))
    local ctx = { options = opts, core = p.view }
    local new = { owner = "alice", tasks = { { alias = "a", image = "host", command = { "true" } } } }
    local none, err = mod.estimate(new, ctx)
    t.eq(none, nil)
    t.match(err.message, "No finished job of alice like this one")
    local ids = {}
    for i = 1, 3 do
      local j = assert(core.submit({ title = "s" .. i, owner = "alice", surface = "test",
        tasks = { { alias = "a", command = { "sh", "-c", "sleep 0." .. i } } } }, { start = true }))
      ids[#ids + 1] = j.id
    end
    -- Another shape and another owner do not count.
    assert(core.submit({ title = "two", owner = "alice", surface = "test", tasks = {
      { alias = "a", command = { "true" } }, { alias = "b", command = { "true" } } } }, { start = true }))
    assert(core.submit({ title = "bob", owner = "bob", surface = "test",
      tasks = { { alias = "a", command = { "sleep", "2" } } } }, { start = true }))
    for _ = 1, 200 do
      local done = 0
      for _, id in ipairs(ids) do
        if core.get(id).state == "succeeded" then done = done + 1 end
      end
      if done == #ids then break end
      t.sleep(20)
    end
    local est = mod.estimate(new, ctx)
    t.ok(est, "an estimate")
    t.eq(est.basis, "an estimate: the median of 3 finished jobs of alice with the same shape")
    t.eq(est.currency, "EUR")
    t.ok(est.duration >= 1 and est.duration <= 2, "the median lasted about 0.2 s, rounded up: " .. tostring(est.duration))
    t.ok(est.costs >= 0, tostring(est.costs))
    t.eq(mod.epoch("1970-01-02T00:00:01.500Z"), 86401.5)
    t.eq(mod.epoch("2026-03-02T00:00:00Z"), os.time({ year = 2026, month = 3, day = 2, hour = 0 })
      - (os.time({ year = 1970, month = 1, day = 2, hour = 0 }) - 86400))
  end },
}
