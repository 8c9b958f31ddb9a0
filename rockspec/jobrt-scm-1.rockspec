-- The jobrt Lua library and its core module for plain Lua 5.4, so that
-- policy authors can load and unit-test their policies without the daemon:
--   luarocks --lua-version 5.4 make rockspec/jobrt-scm-1.rockspec
rockspec_format = "3.0"
package = "jobrt"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "Job runtime: durable jobs, DAG scheduling, sandboxed tasks, Lua surfaces and policies",
  detailed = [[
jobrt.core (the job store, scheduler and executor, built from the daemon's
C core), the runtime's Lua library (jobrt.json, jobrt.router,
jobrt.units, jobrt.jobs, jobrt.config, jobrt.async, jobrt.submit, ...)
and the built-in policies, estimators and publishers (policies.*), so that
a policy's busted spec runs with plain lua5.4. The daemon itself is built
with make.]],
  license = "Apache-2.0",
}
dependencies = { "lua == 5.4" }
build = {
  type = "make",
  build_target = "rock",
  install_target = "",
  build_variables = {},
  install_variables = {},
  install = {
    lib = { ["jobrt.core"] = "build/rock/jobrt/core.so" },
    lua = {
      ["jobrt.async"] = "lua/jobrt/async.lua",
      ["jobrt.auth"] = "lua/jobrt/auth.lua",
      ["jobrt.config"] = "lua/jobrt/config.lua",
      ["jobrt.config_listen"] = "lua/jobrt/config_listen.lua",
      ["jobrt.config_modules"] = "lua/jobrt/config_modules.lua",
      ["jobrt.config_types"] = "lua/jobrt/config_types.lua",
      ["jobrt.jobs"] = "lua/jobrt/jobs.lua",
      ["jobrt.json"] = "lua/jobrt/json.lua",
      ["jobrt.json_span"] = "lua/jobrt/json_span.lua",
      ["jobrt.model"] = "lua/jobrt/model.lua",
      ["jobrt.outputs"] = "lua/jobrt/outputs.lua",
      ["jobrt.plugins"] = "lua/jobrt/plugins.lua",
      ["jobrt.router"] = "lua/jobrt/router.lua",
      ["jobrt.schema"] = "lua/jobrt/schema.lua",
      ["jobrt.signed_url"] = "lua/jobrt/signed_url.lua",
      ["jobrt.submit"] = "lua/jobrt/submit.lua",
      ["jobrt.suggest"] = "lua/jobrt/suggest.lua",
      ["jobrt.tables"] = "lua/jobrt/tables.lua",
      ["jobrt.units"] = "lua/jobrt/units.lua",
      ["jobrt.sigv4"] = "lua/jobrt/sigv4.lua",
      ["jobrt.http_client"] = "lua/jobrt/http_client.lua",
      ["jobrt.publication"] = "lua/jobrt/publication.lua",
      -- The built-in plugins, to build on or to compare with.
      ["policies.approve.image_allowlist"] = "policies/approve/image_allowlist.lua",
      ["policies.approve.manual"] = "policies/approve/manual.lua",
      ["policies.approve.quota"] = "policies/approve/quota.lua",
      ["policies.approve.resource_caps"] = "policies/approve/resource_caps.lua",
      ["policies.approve.schedule"] = "policies/approve/schedule.lua",
      ["policies.estimate.price_table"] = "policies/estimate/price_table.lua",
      ["policies.estimate.history"] = "policies/estimate/history.lua",
      ["policies.publish.local"] = "policies/publish/local.lua",
      ["policies.publish.s3"] = "policies/publish/s3.lua",
    },
  },
}
