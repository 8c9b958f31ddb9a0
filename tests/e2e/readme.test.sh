#!/usr/bin/env bash
# The README's first steps, as a new user types them: the embedded default
# started from an empty folder (relative data directory), the generated
# token from jobrt-data/auth/admin.txt, the two-task example job, the
# Bacalhau section's signed submit pasted as written, the Kuscia
# section's YAML saved and served with its create and query pasted, and the
# Prometheus section's deployment and scrape config checked.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin=$(realpath "${JOBRT_BIN:-./jobrt}")
tmp=$(mktemp -d)
pid= kpid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null
  rm -rf "$tmp"
}
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

# The Kuscia section: its YAML saved as kuscia.yaml, `jobrt serve -c
# kuscia.yaml` started in that folder, its create and query pasted as
# written but for the port; the job then runs to Succeeded, each party
# printing its domain and the task input config.
kdir="$tmp/kuscia"
mkdir "$kdir"
section() { awk '/^## Kuscia/ {b = 1; next} b && /^## / {exit} b' README.md; }
section | awk '/^```yaml$/ {on = 1; next} on && /^```$/ {exit} on' >"$kdir/kuscia.yaml"
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$kdir" && exec "$bin" serve -c kuscia.yaml --listen "127.0.0.1:$kport" 2>"$kdir/log") &
kpid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$kport/jobrt/healthz" >/dev/null && break; sleep 0.05; done
kblock=$(section | awk '/^```sh$/ {on = 1; next} on && /^```$/ {exit} on' | sed "s/127\.0\.0\.1:8080/127.0.0.1:$kport/g")
(cd "$kdir" && eval "$kblock" >paste.out 2>&1)
# Two answers back to back: create's, then query's.
python3 - "$kdir/paste.out" >"$kdir/answers" 2>&1 <<'PY'
import json, sys
text, dec, i, out = open(sys.argv[1]).read(), json.JSONDecoder(), 0, []
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    obj, i = dec.raw_decode(text, i)
    out.append(obj)
create, query = out
assert create["status"]["code"] == 0 and create["data"] == {"job_id": "job-alice-bob-001"}, create
assert query["status"]["code"] == 0 and query["data"]["job_id"] == "job-alice-bob-001", query
print("ok")
PY
grep -qx ok "$kdir/answers"
result $? "the Kuscia section's create and query pasted as written answer code 0 ($(head -c 300 "$kdir/answers"))"
KTOKEN=$(awk '/^token:/ {print $2}' "$kdir/jobrt-data/auth/admin.txt" 2>/dev/null)
kstate=
for _ in $(seq 200); do
  kstate=$(curl -s -X POST "http://127.0.0.1:$kport/api/v1/job/query" -H "Token: $KTOKEN" -H 'Content-Type: application/json' \
    -d '{"job_id": "job-alice-bob-001"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["status"]["state"])' 2>/dev/null)
  case "$kstate" in Succeeded|Failed) break ;; esac
  sleep 0.05
done
[ "$kstate" = Succeeded ]
result $? "the Kuscia job runs to Succeeded (state: $kstate)"
curl -s -H "Authorization: Bearer $KTOKEN" "http://127.0.0.1:$kport/jobrt/v1/jobs/job-alice-bob-001/logs" >"$kdir/logs.json"
grep -qF 'bob: {\"sf_node_eval_param\":{\"name\":\"train_test_split\"}}' "$kdir/logs.json" &&
  grep -qF 'alice: {\"sf_node_eval_param\":{\"domain\":\"data_prep\",\"name\":\"psi\"}}' "$kdir/logs.json"
result $? "its parties printed their domain and task input config (native API logs)"
kill "$kpid"; wait "$kpid"; krc=$?; kpid=
[ "$krc" = 0 ]
result $? "the Kuscia deployment stops on SIGTERM with exit code 0 (got $krc)"

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

# The Prometheus section: its deployment lines served; a scrape with the
# token (as Prometheus sends it, from the scrape config's credentials file)
# passes promtool; the structured log's example line is one JSON object.
mdir="$tmp/metrics"
mkdir "$mdir"
prom() { awk '/^### Prometheus/ {b = 1; next} b && /^##/ {exit} b' README.md; }
prom | awk '/^```yaml$/ {on = 1; next} on && /^```$/ {exit} on' >"$mdir/jobrt.yaml"
mtoken=$(awk '$1 == "token:" {print $2}' "$mdir/jobrt.yaml")
prom | awk '/^```yaml$/ {n++; if (n == 2) {on = 1; next}} on && /^```$/ {exit} on' >"$mdir/prometheus.yml"
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$mdir" && exec "$bin" serve -c jobrt.yaml --listen "127.0.0.1:$mport" 2>"$mdir/log") &
pid=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$mport/jobrt/healthz" >/dev/null && break; sleep 0.05; done
grep -q 'metrics_path: /jobrt/metrics' "$mdir/prometheus.yml" &&
  curl -sf -H "Authorization: Bearer $mtoken" "http://127.0.0.1:$mport/jobrt/metrics" >"$mdir/metrics.txt" &&
  promtool check metrics <"$mdir/metrics.txt" &&
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/jobrt/metrics")" = 401 ]
result $? "the Prometheus section's token scrapes metrics that promtool accepts"
# The scrape config as written, its credentials file made where it says.
printf '%s\n' "$mtoken" >"$mdir/jobrt.token"
sed "s|/etc/prometheus/jobrt.token|$mdir/jobrt.token|" "$mdir/prometheus.yml" >"$mdir/prometheus.local.yml"
promtool check config "$mdir/prometheus.local.yml" >"$mdir/promcheck" 2>&1
prc=$?
result $prc "its scrape config passes promtool check config"
[ "$prc" = 0 ] || sed 's/^/    /' "$mdir/promcheck" >&2
awk '/^### Structured logs/ {b = 1; next} b && /^```json$/ {on = 1; next} on && /^```$/ {exit} on' README.md |
  python3 -c 'import json,sys; v = json.loads(sys.stdin.read()); assert {"time","level","message","request_id"} <= set(v)'
result $? "the structured log's example line is a JSON object with time, level, message and request_id"
kill "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ]
result $? "the metrics deployment stops on SIGTERM with exit code 0 (got $rc)"
