#!/usr/bin/env bash
# `jobrt policy test FILE JOB.json`: a policy run on a job document as the
# daemon runs it, printing its decision and reason with the exit status
# of the decision; options from a deployment file with -c; an estimator's
# estimate; a broken file named with its line; a runaway policy bounded.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin=$(realpath "${JOBRT_BIN:-./jobrt}")
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, expected status, expected output (a grep -E pattern), command...
  local name=$1 want=$2 pattern=$3
  shift 3
  local out rc
  out=$(cd "$tmp" && timeout 60 "$@" 2>&1)
  rc=$?
  if [ "$rc" = "$want" ] && printf '%s\n' "$out" | grep -Eq -- "$pattern"; then
    echo "ok - policy test: $name"
  else
    echo "not ok - policy test: $name"
    echo "    status $rc (wanted $want), output:" >&2
    printf '%s\n' "$out" | sed 's/^/    /' >&2
  fi
}

printf '%s\n' '{"title": "big", "tasks": [{"alias": "a", "command": ["true"], "timeout": "2h",' \
  '  "resources": {"cpu": 2, "memory": "4GiB"}}]}' > "$tmp/job.json"
printf '%s\n' 'plugins:' '  caps: {use: approve.resource_caps, cpu: 4, memory: 1GiB}' \
  '  q: {use: approve.quota, max_active: 0}' 'surfaces:' '  native: {approval: [caps, q]}' > "$tmp/d.yaml"
mkdir -p "$tmp/site"
printf '%s\n' 'return {' '  approve = function(job)' '    return "accept" +' '  end,' '}' > "$tmp/site/broken.lua"
printf '%s\n' 'return function() while true do end end' > "$tmp/site/spin.lua"
printf '%s\n' 'return { schema = { limit = { type = "integer", required = true } },' \
  '  approve = function(job, ctx) if #job.tasks > ctx.options.limit then return "reject", "too many tasks" end' \
  '    return "accept" end }' > "$tmp/site/few.lua"

P=$root/policies
check "options from the deployment; reject with the reason, status 1" 1 \
  '^reject: task a asks for 4 GiB of memory, more than the limit of 1 GiB$' \
  "$bin" policy test "$P/approve/resource_caps.lua" job.json -c d.yaml
check "wait says what would make the daemon ask again, status 3" 3 \
  'asked again when one of the owner.s jobs ends' \
  "$bin" policy test "$P/approve/quota.lua" job.json -c d.yaml --owner alice
check "defaults without -c: accept, status 0" 0 '^accept$' \
  "$bin" policy test "$P/approve/quota.lua" job.json
check "an estimator prints its estimate" 0 '"costs":' \
  "$bin" policy test "$P/estimate/price_table.lua" job.json
check "a required option is named" 2 'limit: .*missing|missing "limit"' \
  "$bin" policy test site/few.lua job.json
check "a file that does not load is named with its line" 4 'broken\.lua:4:' \
  "$bin" policy test site/broken.lua job.json
check "a policy that loops forever is stopped" 4 'time limit exceeded' \
  "$bin" policy test site/spin.lua job.json
check "a job document the pipeline would refuse is refused, naming the field" 2 'tasks\[0\]\.comand' \
  sh -c "printf '{\"tasks\": [{\"alias\": \"a\", \"comand\": [\"x\"]}]}' > bad.json && $bin policy test $P/approve/quota.lua bad.json"
