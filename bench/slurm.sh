#!/usr/bin/env bash
# 200 tiny tasks through the Slurm executor against 200 plain
# `sbatch --wrap=true`, on one throwaway cluster (tools/slurm/up.sh: one
# node with this machine's CPUs, batch_sched_delay=0) in the same run.
# Baseline: a loop of sbatch calls, wall time from the first submit until
# squeue shows all 200 ended. jobrt: the same number of jobs of one
# /bin/true task each, submitted over the native API by curl --parallel,
# wall time from the first submit until every job has succeeded; the
# executor's defaults (poll 1 s, batches of up to 50 within 0.2 s, 2 steps
# at once) unless BENCH_SLURM_YAML adds executor keys. Prints both, the
# ratio, and how many Slurm jobs jobrt used.
# BENCH_SLURM_TASKS=N (default 200).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
N=${BENCH_SLURM_TASKS:-200}
AUTH=bench:bench-password

if [ "$(id -u)" != 0 ]; then
    echo "slurm: skipped (needs root: slurmd runs the jobs)"
    exit 0
fi
for tool in curl sbatch slurmctld munged; do
    command -v $tool >/dev/null 2>&1 || [ -x /usr/sbin/$tool ] ||
        { echo "slurm: skipped (needs $tool: make slurm-deps)"; exit 0; }
done

DIR=$(mktemp -d /tmp/jobrt-bench-slurm.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    tools/slurm/down.sh "$DIR/cluster" >/dev/null 2>&1
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "slurm: FAILED: $*"; tail -20 "$DIR/log" 2>/dev/null; exit 1; }
now_ms() { date +%s%3N; }

tools/slurm/up.sh "$DIR/cluster" >/dev/null || fail "the cluster did not start"
export SLURM_CONF="$DIR/cluster/slurm.conf"

# ---- baseline: N plain sbatch ----
mkdir -p "$DIR/out"
t0=$(now_ms)
for i in $(seq "$N"); do
    sbatch --parsable -J bench-plain -o /dev/null --wrap=true >>"$DIR/plain.ids" ||
        fail "sbatch failed"
done
plain_submit_ms=$(($(now_ms) - t0))
for i in $(seq 3000); do
    left=$(squeue -h -n bench-plain -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i | wc -l)
    [ "$left" = 0 ] && break
    [ "$i" = 3000 ] && fail "the plain jobs did not drain in 10 min"
    sleep 0.2
done
t1=$(now_ms)
plain_ms=$((t1 - t0))
plain_bad=$(squeue -h -n bench-plain -t all -o %T | grep -vc COMPLETED)

# ---- jobrt with the Slurm executor ----
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
{
    printf 'log: {level: warn}\nusers: {bench: {password: bench-password, roles: [admin]}}\n'
    printf 'executor:\n  backend: slurm\n  conf: %s\n' "$SLURM_CONF"
    [ -n "${BENCH_SLURM_YAML:-}" ] && printf '%s\n' "$BENCH_SLURM_YAML" | sed 's/^/  /'
} >"$DIR/jobrt.yaml"
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DIR/data" -c "$DIR/jobrt.yaml" 2>"$DIR/log" &
PID=$!
for i in $(seq 400); do
    curl -sf "$URL/jobrt/healthz" >/dev/null 2>&1 && break
    [ "$i" = 400 ] && fail "the daemon did not come up"
    sleep 0.025
done
for i in $(seq "$N"); do
    [ "$i" -gt 1 ] && echo next
    printf 'url = "%s/jobrt/v1/jobs"\nuser = "%s"\nheader = "Content-Type: application/json"\n' \
        "$URL" "$AUTH"
    printf 'data = "{\\"id\\":\\"b%d\\",\\"start\\":true,\\"tasks\\":[{\\"alias\\":\\"t\\",\\"command\\":[\\"/bin/true\\"]}]}"\n' "$i"
    printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
done >"$DIR/submits.cfg"
t0=$(now_ms)
curl -s --no-progress-meter --parallel --parallel-max 16 -K "$DIR/submits.cfg" >"$DIR/codes" || fail "curl failed"
[ "$(grep -c '^201$' "$DIR/codes")" = "$N" ] || fail "not every submit was accepted: $(sort "$DIR/codes" | uniq -c)"
for i in $(seq 3000); do
    done_n=$(curl -s -u "$AUTH" "$URL/jobrt/v1/jobs?state=succeeded&limit=1000" |
             grep -o '"id":"b[0-9]*"' | sort -u | wc -l)
    [ "$done_n" = "$N" ] && break
    [ "$i" = 3000 ] && fail "jobrt's jobs did not finish in 10 min ($done_n of $N)"
    sleep 0.2
done
t1=$(now_ms)
jobrt_ms=$((t1 - t0))
used=$(squeue -h -t all -o %j | grep -c '^jobrt-')

echo "slurm: $N tiny tasks on one node of $(nproc) CPUs (batch_sched_delay=0)"
printf 'slurm:   plain sbatch --wrap=true x%d:   %6.2f s (its submit loop %.2f s)%s\n' "$N" \
    "$(echo "$plain_ms / 1000" | bc -l)" "$(echo "$plain_submit_ms / 1000" | bc -l)" \
    "$([ "$plain_bad" != 0 ] && echo ", $plain_bad not COMPLETED")"
printf 'slurm:   jobrt, executor slurm (%d Slurm jobs): %6.2f s\n' "$used" \
    "$(echo "$jobrt_ms / 1000" | bc -l)"
printf 'slurm: ratio plain/jobrt = %.2f (higher: the executor is faster)\n' \
    "$(echo "$plain_ms / $jobrt_ms" | bc -l)"
