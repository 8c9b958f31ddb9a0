#!/usr/bin/env bash
# The rock's jobrt.core with plain lua5.4, as a policy author uses it: the
# core module loads, stores a job, and a policy is tested without the daemon;
# then `luarocks make` installs the rock into a temporary tree and a
# policy's busted spec (tests/rock/) passes against that installed tree.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
so=build/rock/jobrt/core.so
if [ ! -f "$so" ]; then
  echo "not ok - rock: $so is missing (make rock)"
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, lua source
  if out=$(cd "$tmp" && timeout 60 lua5.4 - 2>&1 <<LUA
package.cpath = "$root/build/rock/?.so;" .. package.cpath
package.path = "$root/lua/?.lua;$root/?.lua;$root/?/init.lua;" .. package.path
local root = "$root"
$2
LUA
); then
    echo "ok - rock: $1"
  else
    echo "not ok - rock: $1"
    echo "$out" | sed 's/^/    /' >&2
  fi
}

check "jobrt.core stores and reads a job in plain lua5.4" '
local core = require("jobrt.core")
assert(core.open({ data_dir = "data", node = { gpu = 0, max_tasks = 2 } }))
local job = assert(core.submit({ title = "plain", owner = "me", surface = "test", tasks = {} }))
assert(core.get(job.id).title == "plain")
local page = assert(core.list({ owner = "me" }))
assert(#page.jobs == 1, "one job listed")
local ok, msg, code = core.get("missing")
assert(ok == nil and code == "NOT_FOUND", tostring(code))
core.close()'

check "a policy is unit-tested without the daemon" '
local allow = dofile(root .. "/policies/approve/image_allowlist.lua")
local ctx = { options = { images = { "host", "ubuntu*" } } }
assert(allow.approve({ tasks = { { alias = "a" }, { alias = "b", image = "ubuntu:24.04" } } }, ctx) == "accept")
local decision, reason = allow.approve({ tasks = { { alias = "c", image = "alpine" } } }, ctx)
assert(decision == "reject" and reason:find("alpine"), reason)'

check "the C JSON codec and the crypto module come with it" '
require("jobrt.core")
local json = require("jobrt.json")
assert(json.encode(json.decode("{\"a\":[]}")) == "{\"a\":[]}")
local crypto = require("jobrt.crypto")
assert(#crypto.sha256("x") == 32)'

check "the model check runs in C with the rock, and still names the problems" '
require("jobrt.core")
local model = require("jobrt.model")
local json = require("jobrt.json")
assert(model.check_c, "jobrt.modelc is preloaded")
local job = json.decode("{\"priority\": 2.0, \"tasks\": [{\"alias\": \"a\", \"command\": [\"true\"]}]}")
assert(model.validate(job) == job and math.type(job.priority) == "integer")
local ok, err = model.validate({ titel = "x", tasks = { { alias = "a" } } })
assert(ok == nil and err == "titel: unknown field (did you mean \"title\"?)", err)'

check "jobrt.json loaded before jobrt.core: empty lists from the core still encode as []" '
local json = require("jobrt.json")
local core = require("jobrt.core")
assert(core.open({ data_dir = "data2", node = { gpu = 0, max_tasks = 2 } }))
local job = assert(core.submit({ title = "empty", tasks = {} }))
assert(json.encode(job.tasks) == "[]", json.encode(job.tasks))
assert(json.is_array(job.tasks))
core.close()'

# luarocks make into a fresh tree, then busted with only that tree's paths.
if ! command -v luarocks >/dev/null 2>&1 || [ ! -f /usr/share/lua/5.4/busted/runner.lua ]; then
  echo "not ok - rock: luarocks and lua-busted are needed (make deps installs them)"
  exit 1
fi
tree="$tmp/tree"
if out=$(timeout 300 luarocks --lua-version 5.4 --tree "$tree" make rockspec/jobrt-scm-1.rockspec 2>&1) &&
   [ -f "$tree/lib/lua/5.4/jobrt/core.so" ] && [ -f "$tree/share/lua/5.4/jobrt/submit.lua" ] &&
   [ -f "$tree/share/lua/5.4/policies/approve/quota.lua" ]; then
  echo "ok - rock: luarocks make installs jobrt.core, the Lua library and the built-in policies into a tree"
else
  echo "not ok - rock: luarocks make installs jobrt.core, the Lua library and the built-in policies into a tree"
  echo "$out" | tail -20 | sed 's/^/    /' >&2
fi
# Outside the repository, so nothing is found but the tree and the system's busted.
mkdir -p "$tmp/spec" "$tmp/site-lua/approve"
cp tests/rock/*_spec.lua "$tmp/spec/"
# The guide's example policy and its spec, as docs/policies.md gives them.
block() { awk -v first="$1" '/^```lua$/ {on = 1; n = 0; next} on && /^```$/ {on = 0; next}
  on { n++; if (n == 1 && $0 != first) on = 0; else if (on) print }' docs/policies.md; }
block "-- site-lua/approve/nightly.lua: jobs that ask for a GPU run at night only." > "$tmp/site-lua/approve/nightly.lua"
block "-- spec/nightly_spec.lua" > "$tmp/spec/nightly_spec.lua"
[ -s "$tmp/site-lua/approve/nightly.lua" ] && [ -s "$tmp/spec/nightly_spec.lua" ] ||
  echo "not ok - rock: docs/policies.md has the example policy and spec"
if out=$(cd "$tmp" && JOBRT_ROCK_TREE="$tree" \
    LUA_PATH_5_4="$tree/share/lua/5.4/?.lua;$tree/share/lua/5.4/?/init.lua;/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua" \
    LUA_CPATH_5_4="$tree/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/lib/$(uname -m)-linux-gnu/lua/5.4/?.so" \
    timeout 120 lua5.4 /usr/bin/busted -o TAP spec 2>&1); then
  echo "ok - rock: policies' busted specs (the guide's among them) pass against the installed rock"
else
  echo "not ok - rock: policies' busted specs (the guide's among them) pass against the installed rock"
  echo "$out" | tail -30 | sed 's/^/    /' >&2
fi
