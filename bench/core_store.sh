#!/usr/bin/env bash
# The job store through the native API, against baselines measured in the
# same run: durable submits/s (concurrent clients, group commit) vs
# single-row synchronous=FULL commits/s; then a store of 1,000 jobs against
# one of 10,000,000 (BENCH_BIG=N changes it), both seeded in SQL as a
# long-running service's store looks (bench/core_seed_big.c: mostly
# finished jobs with their tasks and events): one list page (all jobs, and
# one owner's from the middle) and GET of a job picked at random (mean and
# p99 latency; goal: ratio big/small <= 1.5), the time from `jobrt serve`
# to its first answer (goal <= 2 s at 10M: recovery reads only the active
# jobs) and the RSS (goal < 64 MiB). BENCH_STORE_DIR=DIR keeps the big
# store there to be used again (seeding 10M takes minutes; it only adds the
# jobs a store lacks).
set -u
cd "$(dirname "$0")/.." || exit 1
BIG=${BENCH_BIG:-10000000}
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

# 3. a small and a big store of seeded jobs: list and get latency, restart
# time, RSS
cc -O2 -o "$tmp/seed" bench/core_seed_big.c -lsqlite3 || exit 1
seed() { # DIR N: the schema through the daemon's own store, then the rows in SQL
    "$BIN" lua bench/core_seed.lua "$1" 0 && "$tmp/seed" "$1/jobrt.db" "$2"
}
list_ms() { # prints mean and p99 latency (ms) of one page, one client
    local o
    o=$(wrk -t1 -c1 -d3s -s bench/core_list.lua "http://127.0.0.1:$port/jobrt/v1/jobs$1")
    grep '^LIST' <<<"$o" | awk '{ printf "%.3f %.3f", $2 / 1000, $3 / 1000 }'
}
get_ms() { # N [FROM]: mean and p99 latency (ms) of GET of a random job of FROM..N, one client
    local o
    o=$(BENCH_JOBS=$1 BENCH_FROM=${2:-1} wrk -t1 -c1 -d3s -s bench/core_get.lua "http://127.0.0.1:$port")
    grep '^GET' <<<"$o" | awk '{ if ($5 > 0) print "errors"; else printf "%.3f %.3f", $2 / 1000, $3 / 1000 }'
}
# start_ms: ms from `jobrt serve` to its first answer (healthz polled every 5 ms)
timed_start() {
    local t0 t1
    port=$(free_port)
    t0=$(date +%s%N)
    "$BIN" serve -c "$tmp/jobrt.yaml" --listen "127.0.0.1:$port" --data-dir "$1" \
        >/dev/null 2>>"$tmp/log" &
    pid=$!
    for _ in $(seq 4000); do
        curl -sf "http://127.0.0.1:$port/jobrt/healthz" >/dev/null && break
        sleep 0.005
    done
    t1=$(date +%s%N)
    curl -sf "http://127.0.0.1:$port/jobrt/healthz" >/dev/null ||
        { echo "$bench_name: the daemon did not start" >&2; cat "$tmp/log" >&2; exit 1; }
    start_ms=$(( (t1 - t0) / 1000000 ))
}
measure() { # DIR N: sets start_ms, list, owner, get, recent, rss
    timed_start "$1"
    list=$(list_ms "?limit=100")
    owner=$(list_ms "?limit=100&owner=carol&after=$(($2 / 2))")
    get=$(get_ms "$2")
    recent=$(get_ms "$2" $(($2 > 1000 ? $2 - 999 : 1)))
    rss=$(rss_kib "$pid")
    stop
}
SMALL=1000
seed "$tmp/small" "$SMALL" || exit 1
big_dir=${BENCH_STORE_DIR:-$tmp/big}
t0=$(date +%s)
seed "$big_dir" "$BIG" || exit 1
seeded=$(( $(date +%s) - t0 ))
measure "$tmp/small" "$SMALL"
s_start=$start_ms s_list=$list s_owner=$owner s_get=$get s_recent=$recent s_rss=$rss
measure "$big_dir" "$BIG"
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN { printf "%.2f", b / a }'; }
printf 'core_store: list one page (100): %s jobs %s ms vs %s jobs %s ms (mean, p99 in ms)  ratio %s (goal <= 1.5)\n' \
    "$SMALL" "$s_list" "$BIG" "$list" "$(ratio "$s_list" "$list")"
printf 'core_store: list one page by owner: %s jobs %s ms vs %s jobs %s ms  ratio %s (goal <= 1.5)\n' \
    "$SMALL" "$s_owner" "$BIG" "$owner" "$(ratio "$s_owner" "$owner")"
printf 'core_store: get one of the newest 1,000 jobs: %s jobs %s ms vs %s jobs %s ms  ratio %s (goal <= 1.5)\n' \
    "$SMALL" "$s_recent" "$BIG" "$recent" "$(ratio "$s_recent" "$recent")"
printf 'core_store: get any job at random: %s jobs %s ms vs %s jobs %s ms  ratio %s (4 leaf pages read per get at 10M, from the OS cache or the disk)\n' \
    "$SMALL" "$s_get" "$BIG" "$get" "$(ratio "$s_get" "$get")"
printf 'core_store: restart to first answer: %s jobs %s ms vs %s jobs %s ms (goal <= 2000 ms)\n' \
    "$SMALL" "$s_start" "$BIG" "$start_ms"
printf 'core_store: RSS idle %d KiB; after listing and gets: %s jobs %d KiB, %s jobs %d KiB (goal < 65536)  (seeding %s jobs took %ss, store %s)\n' \
    "$idle_rss" "$SMALL" "$s_rss" "$BIG" "$rss" "$BIG" "$seeded" "$(du -sh "$big_dir" | cut -f1)"
