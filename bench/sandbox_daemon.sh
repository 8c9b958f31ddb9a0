#!/usr/bin/env bash
# Sandboxed tasks per second through the whole daemon: N jobs of one
# /bin/true task each, submitted with "start": true over the native API by
# curl --parallel (a C client, so that the client's own CPU takes little
# of the two cores the tasks need); wall time from the first submit until
# the event stream has shown every job ended. Then every job is checked to
# have succeeded. The bare fork+exec rate of /bin/true
# (xargs, same parallelism, same run) is printed beside it.
# BENCH_SANDBOX_JOBS=N (default 2000: a steady state of some seconds, not
# the start-up), BENCH_SANDBOX_CLIENTS=N (default 16),
# BENCH_SANDBOX_MAX_TASKS (default 16).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
JOBS=${BENCH_SANDBOX_JOBS:-2000}
CLIENTS=${BENCH_SANDBOX_CLIENTS:-16}
MAX_TASKS=${BENCH_SANDBOX_MAX_TASKS:-16}
AUTH=bench:bench-password

if [ "$(id -u)" != 0 ]; then
    echo "sandbox_daemon: skipped (needs root: cgroups and the id mapping)"
    exit 0
fi
for tool in curl node; do
    command -v $tool >/dev/null 2>&1 || { echo "sandbox_daemon: skipped (needs $tool)"; exit 0; }
done

DIR=$(mktemp -d /tmp/jobrt-bench-sbd.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "sandbox_daemon: FAILED: $*"; tail -20 "$DIR/log"; exit 1; }
now_ns() { date +%s%N; }

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
URL="http://127.0.0.1:$PORT"
printf 'log: {level: warn}\nnode: {max_tasks: %s}\nusers: {bench: {password: bench-password, roles: [admin]}}\n' \
    "$MAX_TASKS" > "$DIR/jobrt.yaml"
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DIR/data" -c "$DIR/jobrt.yaml" \
    2> "$DIR/log" &
PID=$!
for i in $(seq 400); do
    curl -sf "$URL/jobrt/healthz" >/dev/null 2>&1 && break
    [ "$i" = 400 ] && fail "the daemon did not come up"
    sleep 0.025
done

# One curl run submits every job, CLIENTS at a time over kept-alive connections.
BODY='{"start":true,"tasks":[{"alias":"t","command":["/bin/true"]}]}'
for i in $(seq "$JOBS"); do
    [ "$i" -gt 1 ] && echo next
    printf 'url = "%s/jobrt/v1/jobs"\nuser = "%s"\nheader = "Content-Type: application/json"\n' \
        "$URL" "$AUTH"
    printf "data = \"%s\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code}\\\\n\"\n" \
        "${BODY//\"/\\\"}"
done > "$DIR/submits.cfg"

# The end is read from the event stream by one Node process started
# before the clock: a job event in a final state for every job. It prints
# the wall-clock time (ms since the epoch) at which it saw the last one.
# after=0 replays from the first event, so nothing is missed.
JOBS=$JOBS URL=$URL AUTH=$AUTH READY="$DIR/ready" node --input-type=module -e '
import { writeFileSync } from "node:fs";
const n = Number(process.env.JOBS);
const auth = { Authorization: `Basic ${Buffer.from(process.env.AUTH).toString("base64")}` };
const ctl = new AbortController();
const timer = setTimeout(() => ctl.abort(), 300000);
let ended = 0, rest = "";
try {
  const r = await fetch(`${process.env.URL}/jobrt/v1/events?after=0`, { headers: auth, signal: ctl.signal });
  writeFileSync(process.env.READY, String(r.status));
  const dec = new TextDecoder();
  for await (const chunk of r.body) {
    const lines = (rest + dec.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop();
    for (const l of lines) {
      const e = l && JSON.parse(l);
      if (e && e.type === "job" && ["succeeded", "failed", "canceled"].includes(e.state)) ended++;
    }
    if (ended >= n) break;
  }
} catch (e) {
  if (e.name !== "AbortError") throw e;
}
console.log(`${ended} ${(performance.timeOrigin + performance.now()).toFixed(3)}`);
clearTimeout(timer);
ctl.abort();
' > "$DIR/ended" &
WATCH=$!
for i in $(seq 400); do
    [ -s "$DIR/ready" ] && break
    [ "$i" = 400 ] && fail "the event stream did not open"
    sleep 0.025
done
[ "$(cat "$DIR/ready")" = 200 ] || fail "the event stream answered $(cat "$DIR/ready")"

t0=$(now_ns)
codes=$(curl -s --no-progress-meter --parallel --parallel-max "$CLIENTS" -K "$DIR/submits.cfg" 2>/dev/null)
created=$(grep -c '^201$' <<< "$codes")
[ "$created" = "$JOBS" ] || fail "$created of $JOBS submits answered 201"
wait "$WATCH" || fail "the event stream could not be read"
read -r ended end_ms < "$DIR/ended"
[ "$ended" = "$JOBS" ] || fail "$ended of $JOBS jobs ended within 300 s"
t1=$(awk -v ms="$end_ms" 'BEGIN { printf "%.0f", ms * 1e6 }')

# Outside the timed window: every job must have succeeded.
succeeded=$(JOBS=$JOBS URL=$URL AUTH=$AUTH node --input-type=module -e '
const auth = { Authorization: `Basic ${Buffer.from(process.env.AUTH).toString("base64")}` };
let ok = 0, after;
for (let pages = 0; pages < 10000; pages++) {
  const q = after ? `&after=${after}` : "";
  const page = await (await fetch(`${process.env.URL}/jobrt/v1/jobs?limit=1000${q}`, { headers: auth })).json();
  for (const j of page.jobs) if (j.state === "succeeded") ok++;
  if (!page.next || page.jobs.length === 0) break;
  after = page.next;
}
console.log(ok);
') || fail "could not list the jobs"
[ "$succeeded" = "$JOBS" ] || fail "$succeeded of $JOBS jobs succeeded"

b0=$(now_ns)
seq "$JOBS" | xargs -P "$MAX_TASKS" -n 1 /bin/true
b1=$(now_ns)

awk -v n="$JOBS" -v c="$CLIENTS" -v m="$MAX_TASKS" -v d=$((t1 - t0)) -v b=$((b1 - b0)) 'BEGIN {
    rate = n / (d / 1e9); bare = n / (b / 1e9)
    printf "sandbox_daemon: %d jobs of /bin/true, %d clients, max_tasks %d\n", n, c, m
    printf "  daemon, sandboxed, submit to finished: %.2f s = %.0f tasks/s\n", d / 1e9, rate
    printf "  bare fork+exec /bin/true (xargs):      %.2f s = %.0f /s\n", b / 1e9, bare
    printf "  ratio (bare / daemon): %.1fx; target >= 300 tasks/s: %s\n", bare / rate,
        (rate >= 300 ? "met" : "NOT met")
}'
