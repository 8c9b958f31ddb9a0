#!/usr/bin/env bash
# Sandboxed tasks per second through the whole daemon: N jobs of one
# /bin/true task each, submitted with "start": true over the native API by
# curl --parallel (a C client, so that the client's own CPU takes little
# of the two cores the tasks need); wall time from the first submit until
# the event stream has shown every job ended. Then every job is checked to
# have succeeded. In the same round, the same number of /bin/true run by
# xargs at the same parallelism, bare (fork+exec) and each in
# `bwrap --unshare-all` (the namespaces a jobrt sandbox makes, with a
# read-only root, /dev and /proc: a sandbox run without a daemon), are the
# baselines. Rounds take turns (daemon, bare, bwrap); the median round of
# each is printed. Beside the wall time, the CPU time of each (the daemon
# with its sandbox server, helpers and tasks; xargs with its children),
# per task: what bounds the rate once the cores are busy.
# BENCH_SANDBOX_JOBS=N (default 2000: a steady state of some seconds, not
# the start-up), BENCH_SANDBOX_CLIENTS=N (default 16),
# BENCH_SANDBOX_MAX_TASKS (default 16), BENCH_SANDBOX_ROUNDS (default
# BENCH_RUNS, else 1).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
JOBS=${BENCH_SANDBOX_JOBS:-2000}
CLIENTS=${BENCH_SANDBOX_CLIENTS:-16}
MAX_TASKS=${BENCH_SANDBOX_MAX_TASKS:-16}
ROUNDS=${BENCH_SANDBOX_ROUNDS:-${BENCH_RUNS:-1}}
AUTH=bench:bench-password

if [ "$(id -u)" != 0 ]; then
    echo "sandbox_daemon: skipped (needs root: cgroups and the id mapping)"
    exit 0
fi
for tool in curl node perl; do
    command -v $tool >/dev/null 2>&1 || { echo "sandbox_daemon: skipped (needs $tool)"; exit 0; }
done
if ! command -v bwrap >/dev/null 2>&1; then
    echo "sandbox_daemon: installing bubblewrap for the baseline" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }
fi
BWRAP=$(command -v bwrap || true)

DIR=$(mktemp -d /tmp/jobrt-bench-sbd.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "sandbox_daemon: FAILED: $*"; tail -20 "$DIR/log"; exit 1; }
now_ns() { date +%s%N; }
TICK=$(getconf CLK_TCK)

# CPU seconds of pid and every descendant: their own time and that of the
# children they reaped (utime, stime, cutime, cstime of /proc/PID/stat).
tree_cpu() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" -v tick="$TICK" '
        {
            pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
            ppid[pid] = f[2]; cpu[pid] = f[12] + f[13] + f[14] + f[15]
        }
        END {
            in_tree[root] = 1
            for (changed = 1; changed;) {
                changed = 0
                for (p in ppid) if (!(p in in_tree) && (ppid[p] in in_tree)) { in_tree[p] = 1; changed = 1 }
            }
            for (p in in_tree) total += cpu[p]
            printf "%.2f\n", total / tick
        }'
}

# Children of pid (one level), from every thread's children file.
children() { cat /proc/"$1"/task/*/children 2>/dev/null; }

# Runs a command; prints its wall seconds and the CPU seconds of it and
# its children.
timed() {
    perl -MTime::HiRes=clock_gettime,CLOCK_MONOTONIC -e '
        my $t0 = clock_gettime(CLOCK_MONOTONIC);
        system(@ARGV) == 0 or exit 1;
        my @t = times;
        printf "%.3f %.2f\n", clock_gettime(CLOCK_MONOTONIC) - $t0, $t[2] + $t[3]' -- "$@"
}

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
URL="http://127.0.0.1:$PORT"
printf 'log: {level: warn}\nnode: {max_tasks: %s}\nusers: {bench: {password: bench-password, roles: [admin]}}\n' \
    "$MAX_TASKS" > "$DIR/jobrt.yaml"

# One curl run submits every job, CLIENTS at a time over kept-alive connections.
BODY='{"start":true,"tasks":[{"alias":"t","command":["/bin/true"]}]}'
for i in $(seq "$JOBS"); do
    [ "$i" -gt 1 ] && echo next
    printf 'url = "%s/jobrt/v1/jobs"\nuser = "%s"\nheader = "Content-Type: application/json"\n' \
        "$URL" "$AUTH"
    printf "data = \"%s\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code}\\\\n\"\n" \
        "${BODY//\"/\\\"}"
done > "$DIR/submits.cfg"

# One round through the daemon, started afresh on an empty data folder:
# prints "wall_seconds cpu_seconds".
daemon_round() {
    rm -rf "$DIR/data" "$DIR/ready" "$DIR/ended"
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DIR/data" -c "$DIR/jobrt.yaml" \
        2> "$DIR/log" &
    PID=$!
    for i in $(seq 400); do
        curl -sf "$URL/jobrt/healthz" >/dev/null 2>&1 && break
        [ "$i" = 400 ] && fail "the daemon did not come up"
        sleep 0.025
    done
    # The end is read from the event stream by one Node process started
    # before the clock: a job event in a final state for every job. It
    # prints the wall-clock time (ms since the epoch) at which it saw the
    # last one. after=0 replays from the first event, so nothing is missed.
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
    local watch=$!
    for i in $(seq 400); do
        [ -s "$DIR/ready" ] && break
        [ "$i" = 400 ] && fail "the event stream did not open"
        sleep 0.025
    done
    [ "$(cat "$DIR/ready")" = 200 ] || fail "the event stream answered $(cat "$DIR/ready")"

    local t0 t1 codes created ended end_ms succeeded cpu server
    t0=$(now_ns)
    codes=$(curl -s --no-progress-meter --parallel --parallel-max "$CLIENTS" -K "$DIR/submits.cfg" 2>/dev/null)
    created=$(grep -c '^201$' <<< "$codes")
    [ "$created" = "$JOBS" ] || fail "$created of $JOBS submits answered 201"
    wait "$watch" || fail "the event stream could not be read"
    read -r ended end_ms < "$DIR/ended"
    [ "$ended" = "$JOBS" ] || fail "$ended of $JOBS jobs ended within 300 s"
    t1=$(awk -v ms="$end_ms" 'BEGIN { printf "%.0f", ms * 1e6 }')
    # The CPU of the daemon's tree once the last helpers are reaped (they
    # end after their outcome is committed), before anything else asks
    # the daemon for work. Warm helpers (jobrt-warm) wait for the next
    # task: what they did so far counts.
    for i in $(seq 200); do
        server=$(children "$PID")
        busy=
        for s in $server; do
            for h in $(children "$s"); do
                [ "$(cat /proc/"$h"/comm 2>/dev/null)" = jobrt-sandbox ] && busy=1
            done
        done
        [ -z "$busy" ] && break
        sleep 0.025
    done
    cpu=$(tree_cpu "$PID")

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
    kill "$PID"
    wait "$PID" 2>/dev/null
    PID=
    awk -v d=$((t1 - t0)) -v c="$cpu" 'BEGIN { printf "%.3f %s\n", d / 1e9, c }'
}

for r in $(seq "$ROUNDS"); do
    daemon_round >> "$DIR/r.daemon" || exit 1
    seq "$JOBS" | timed xargs -P "$MAX_TASKS" -n 1 /bin/true >> "$DIR/r.bare" ||
        fail "xargs /bin/true failed"
    if [ -n "$BWRAP" ]; then
        seq "$JOBS" | timed xargs -P "$MAX_TASKS" -n 1 "$BWRAP" --unshare-all --ro-bind / / \
            --dev /dev --proc /proc /bin/true >> "$DIR/r.bwrap" || fail "xargs bwrap failed"
    fi
done

# The median round of a case (by wall time): "wall cpu".
med() { sort -n "$DIR/r.$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }
report() { # name label
    local wall cpu
    read -r wall cpu < <(med "$1")
    awk -v n="$JOBS" -v w="$wall" -v c="$cpu" -v l="$2" 'BEGIN {
        printf "  %-40s %6.2f s = %5.0f tasks/s, cpu %5.2f ms/task\n", l, w, n / w, c * 1000 / n }'
}
echo "sandbox_daemon: $JOBS jobs of /bin/true per round, $CLIENTS clients, max_tasks $MAX_TASKS," \
     "$ROUNDS round(s), median round"
for r in $(seq "$ROUNDS"); do
    printf '  round %d:' "$r"
    for c in daemon bare bwrap; do
        [ -s "$DIR/r.$c" ] || continue
        sed -n "${r}p" "$DIR/r.$c" | awk -v c=$c -v n="$JOBS" '{ printf " %s %.0f/s (%.2f ms cpu)", c, n / $1, $2 * 1000 / n }'
    done
    echo
done
report daemon "daemon, sandboxed, submit to finished:"
report bare "bare fork+exec /bin/true (xargs):"
[ -s "$DIR/r.bwrap" ] && report bwrap "bwrap --unshare-all /bin/true (xargs):"
read -r dw dc < <(med daemon)
read -r bw bc < <(med bare)
line=$(awk -v d="$dw" -v b="$bw" 'BEGIN { printf "  daemon / bare: %.2fx tasks/s (goal >= 0.8x)", b / d }')
if [ -s "$DIR/r.bwrap" ]; then
    read -r ww wc < <(med bwrap)
    line="$line$(awk -v d="$dw" -v w="$ww" 'BEGIN { printf "; daemon / bwrap: %.2fx (goal >= 1.0x)", w / d }')"
fi
echo "$line"
