-- A policy's busted spec as a policy author writes one, run by
-- tests/e2e/rock.test.sh with plain lua5.4 against the rock installed by
-- `luarocks make` into a temporary tree: jobrt.core opens a scratch store,
-- jobrt.submit gives the policy the view of the core the daemon gives it,
-- and the policy (policies.approve.quota, installed with the rock) decides.
local core = require("jobrt.core")
local submit = require("jobrt.submit")
local quota = require("policies.approve.quota")

local dir

local function job(owner)
  return { title = "t", owner = owner, tasks = { { alias = "a", command = { "sleep", "30" },
    resources = { cpu = 500, memory = 64 * 1024 * 1024 } } } }
end

local function ctx(options)
  return { options = options, core = submit.view("native"), now = os.time() }
end

describe("approve.quota from the installed rock", function()
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(core.open({ data_dir = dir, node = { cpu = 4000, max_tasks = 4 } }))
  end)

  teardown(function()
    core.close()
    -- The handles the core closed finish closing on the loop; busted ends
    -- with os.exit(code, true), and luv's loop must not meet them then.
    require("luv").run()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("is the rock's own jobrt.core", function()
    local tree = os.getenv("JOBRT_ROCK_TREE")
    assert.is_truthy(tree)
    assert.is_truthy(package.searchpath("jobrt.core", package.cpath):find(tree, 1, true))
  end)

  it("accepts an owner under the quota", function()
    assert.are.equal("accept", quota.approve(job("alice"), ctx({ max_active = 1 })))
  end)

  it("holds the next job, to be asked again when one of the owner's jobs ends", function()
    local first = assert(core.submit(job("alice"), { start = true }))
    local decision, reason, when = quota.approve(job("alice"), ctx({ max_active = 1, over = "wait" }))
    assert.are.equal("wait", decision)
    assert.are.equal("alice has 1 jobs queued or running (the quota is 1)", reason)
    assert.are.same({ owner = true }, when)
    assert.are.equal("accept", quota.approve(job("bob"), ctx({ max_active = 1 })))
    core.cancel(first.id)
  end)

  it("counts cpu in flight, and rejects with over = reject", function()
    local first = assert(core.submit(job("carol"), { start = true }))
    local decision, reason = quota.approve(job("carol"), ctx({ max_active = 10, max_cpu = 800, over = "reject" }))
    assert.are.equal("reject", decision)
    assert.matches("carol's jobs ask for 0.5 cpu in flight", reason, 1, true)
    core.cancel(first.id)
  end)
end)
