#!/usr/bin/env bash
# The README's first steps, as a new user types them: the embedded default
# started from an empty folder (relative data directory), the generated
# token from jobrt-data/auth/admin.txt, the two-task example job, and the
# Bacalhau section's signed submit pasted as written.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin=$(realpath "${JOBRT_BIN:-./jobrt}")
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

(cd "$tmp" && exec "$bin" serve --listen "127.0.0.1:$port" 2>"$tmp/log") &
pid=$!
for _ in $(seq 200); do curl -sf "$url/jobrt/healthz" >/dev/null && break; sleep 0.05; done

result() { if [ "$1" = 0 ]; then echo "ok - readme: $2"; else echo "not ok - readme: $2"; sed 's/^/    /' "$tmp/log" | tail -20 >&2; fi; }

TOKEN=$(awk '/^token:/ {print $2}' "$tmp/jobrt-data/auth/admin.txt" 2>/dev/null)
[ -n "$TOKEN" ] && grep -qF -- "$TOKEN" "$tmp/log"
result $? "the first start prints the token kept in jobrt-data/auth/admin.txt"

AUTH="Authorization: Bearer $TOKEN"
id=$(curl -s -H "$AUTH" -H 'Content-Type: application/json' -d '{
  "title": "hello", "start": true,
  "tasks": [
    {"alias": "make", "command": ["sh", "-c", "echo 42 > /outputs/n"],
     "resources": {"cpu": "500m", "memory": "64MiB"}, "timeout": "30s"},
    {"alias": "use", "deps": ["make"], "command": ["cat", "/inputs/n"],
     "inputs": [{"source": "task-output", "task": "make", "file": "n", "target": "/inputs/n"}]}
  ]}' "$url/jobrt/v1/jobs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' 2>/dev/null)
state=
for _ in $(seq 200); do
  state=$(curl -s -H "$AUTH" "$url/jobrt/v1/jobs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null)
  case "$state" in succeeded|failed|canceled) break ;; esac
  sleep 0.05
done
[ "$state" = succeeded ]
result $? "the example job succeeds (state: $state)"

curl -s -H "$AUTH" "$url/jobrt/v1/jobs/$id/logs" | grep -q '"message":"42"'
result $? "the dependant read the first task's output"

# The Bacalhau section's signed submit, exactly as written but for the port.
block=$(awk '/^## Bacalhau/ {b = 1} b && /^```sh$/ {on = 1; next} on && /^```$/ {exit} on' README.md |
        sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/g")
mkdir "$tmp/bacalhau"
(
  cd "$tmp/bacalhau" || exit 1
  eval "$block" >paste.out 2>&1
  for _ in $(seq 200); do
    curl -s -H 'Content-Type: application/json' -d "$Q" "$url/requester/states" >states.json
    grep -q '"State": *"Completed"' states.json && break
    sleep 0.05
  done
  curl -s -H 'Content-Type: application/json' -d "$Q" "$url/requester/results" >results.json
  python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["Data"]["URL"])' <results.json >url
)
grep -q '"State": *"Completed"' "$tmp/bacalhau/states.json"
result $? "the Bacalhau signed submit pasted from the README runs to Completed"
curl -sf "$(cat "$tmp/bacalhau/url" 2>/dev/null)" -o "$tmp/bacalhau/results.tar" &&
  tar -xOf "$tmp/bacalhau/results.tar" stdout 2>/dev/null | grep -q 'Hello World!'
result $? "its results URL downloads a tar whose stdout says Hello World!"

# The client section's block, as written but for the port and the binary's path.
block=$(awk '/^## The client/ {b = 1} b && /^```sh$/ {on = 1; next} on && /^```$/ {exit} on' README.md |
        sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" -e "s|\./jobrt |\"$bin\" |g")
(cd "$tmp" && HOME="$tmp/home" eval "$block") >"$tmp/client.out" 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q 'succeeded' "$tmp/client.out" &&
  [ "$(stat -c %a "$tmp/home/.config/jobrt/credentials" 2>/dev/null)" = 600 ]
result $? "the client section's login, submit --wait and list run as written (exit $rc)"
[ "$rc" = 0 ] || sed 's/^/    /' "$tmp/client.out" | tail -20 >&2

kill "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ]
result $? "SIGTERM stops it with exit code 0 (got $rc)"
