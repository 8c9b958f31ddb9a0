#!/usr/bin/env bash
# The job store through the native API, against baselines measured in the
# same run: durable submits/s (concurrent clients, group commit) vs
# single-row synchronous=FULL commits/s; one list page with 1,000 vs
# 1,000,000 stored jobs (ratio near 1); RSS of the idle daemon and with
# 1,000,000 jobs (target < 64 MiB). BENCH_BIG=N changes the 1,000,000.
set -u
cd "$(dirname "$0")/.." || exit 1
BIG=${BENCH_BIG:-1000000}
. bench/lib.sh
bench_init core_store

cat > "$tmp/jobrt.yaml" <<YAML
log: {level: error}
users:
  bench: {password: bench, roles: [admin]}
YAML

start() { bench_start "$tmp/jobrt.yaml" "$1"; }
stop() { bench_stop; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# 1. baseline: single-row WAL FULL commits on the same disk
cc -O2 -o "$tmp/baseline" bench/core_baseline.c -lsqlite3 || exit 1
base=$("$tmp/baseline" "$tmp/base.db" 3)

# 2. durable submits through the native API
start "$tmp/submit"
idle_rss=$(rss_kib "$pid")
out=$(wrk -t2 -c64 -d"$DUR" -s bench/core_submit.lua "http://127.0.0.1:$port/jobrt/v1/jobs")
read -r _ n secs errors <<<"$(grep '^SUBMITS' <<<"$out")"
stop
rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
printf 'core_store: durable submits/s (native API, 64 clients): %s  vs single-row FULL commits/s: %s  ratio %.1fx  (non-2xx: %s)\n' \
    "$rate" "$base" "$(awk -v a="$rate" -v b="$base" 'BEGIN { print a / b }')" "$errors"

# 3. list latency: 1,000 vs BIG stored jobs
list_ms() { # prints mean and p99 latency (ms) of one page, one client
    local o
    o=$(wrk -t1 -c1 -d3s -s bench/core_list.lua "http://127.0.0.1:$port/jobrt/v1/jobs$1")
    grep '^LIST' <<<"$o" | awk '{ printf "%.3f %.3f", $2 / 1000, $3 / 1000 }'
}
"$BIN" lua bench/core_seed.lua "$tmp/list" 1000 || exit 1
start "$tmp/list"
small=$(list_ms "?limit=100")
small_owner=$(list_ms "?limit=100&owner=carol&after=500")
stop
t0=$(date +%s)
"$BIN" lua bench/core_seed.lua "$tmp/list" "$BIG" || exit 1
seeded=$(( $(date +%s) - t0 ))
start "$tmp/list"
big_idle_rss=$(rss_kib "$pid")
big=$(list_ms "?limit=100")
big_owner=$(list_ms "?limit=100&owner=carol&after=$((BIG / 2))")
big_rss=$(rss_kib "$pid")
stop
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN { printf "%.2f", b / a }'; }
printf 'core_store: list one page (100): 1,000 jobs %s ms vs %s jobs %s ms (mean, p99 in ms)  ratio %s\n' \
    "$small" "$BIG" "$big" "$(ratio "$small" "$big")"
printf 'core_store: list one page by owner: 1,000 jobs %s ms vs %s jobs %s ms  ratio %s\n' \
    "$small_owner" "$BIG" "$big_owner" "$(ratio "$small_owner" "$big_owner")"
printf 'core_store: RSS idle %d KiB; with %s jobs: %d KiB at start, %d KiB after listing (target < 65536)  (seeding took %ss)\n' \
    "$idle_rss" "$BIG" "$big_idle_rss" "$big_rss" "$seeded"
