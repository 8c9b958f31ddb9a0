#!/usr/bin/env bash
# What the operator's view costs: durable submits/s through the native API
# with metrics counted and the log written as JSON (scraped once a second
# meanwhile) against the same daemon with metrics off and the text log, in
# the same run, runs taking turns (BENCH_RUNS, default 3; the median of
# each is printed). Both write one access line per request (log level
# info). The goal: under 5% fewer submits/s. Beside the rate, the daemon's
# CPU time per submit (from /proc), which other load on the machine moves
# far less than the rate: the daemon is one thread, so its rate is about
# the inverse of that time while the clients keep it busy. BENCH_BASELINE_BIN=PATH adds
# a third daemon taking turns with them, e.g. a build from before metrics
# (text log, no metrics key), for what the always-on part costs.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_init metrics
RUNS=${BENCH_RUNS_METRICS:-${BENCH_RUNS:-3}}
[ "$RUNS" -lt 3 ] && RUNS=3
TOKEN=bench-scrape-0123456789abcdef

BASE=${BENCH_BASELINE_BIN:-}
MODES="off on"
[ -n "$BASE" ] && MODES="off on base"
for mode in off on base; do
    {
        echo "users:"
        echo "  bench: {password: bench, roles: [admin]}"
        if [ "$mode" = on ]; then
            echo "log: {level: info, format: json}"
            echo "metrics: {token: $TOKEN}"
        elif [ "$mode" = base ]; then
            echo "log: {level: info}"
        else
            echo "log: {level: info, format: text}"
            echo "metrics: {enabled: false}"
        fi
    } >"$tmp/$mode.yaml"
done

# The daemon's CPU time so far, in clock ticks (user + system).
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# one MODE N: a fresh daemon, one measured wrk run; prints submits/s and
# the daemon's CPU microseconds per submit.
one() {
    local mode=$1 n=$2 out scraper=
    if [ "$mode" = base ]; then
        BIN=$BASE bench_start "$tmp/$mode.yaml" "$tmp/data-$mode-$n"
    else
        bench_start "$tmp/$mode.yaml" "$tmp/data-$mode-$n"
    fi
    if [ "$mode" = on ]; then
        (while sleep 1; do
            curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/jobrt/metrics" >/dev/null || exit 0
        done) &
        scraper=$!
    fi
    local t0 t1
    t0=$(ticks "$pid")
    out=$(wrk -t2 -c64 -d"$DUR" -s bench/core_submit.lua "http://127.0.0.1:$port/jobrt/v1/jobs")
    t1=$(ticks "$pid")
    [ -n "$scraper" ] && kill "$scraper" 2>/dev/null && wait "$scraper" 2>/dev/null
    if [ "$mode" = on ] && ! curl -sf -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$port/jobrt/metrics" | grep -q '^jobrt_job_submissions_total{surface="native"} [1-9]'; then
        echo "metrics: the daemon with metrics on did not count the submits" >&2
        exit 1
    fi
    bench_stop
    rm -rf "$tmp/data-$mode-$n"
    read -r _ ok secs errors <<<"$(grep '^SUBMITS' <<<"$out")"
    [ "${errors:-1}" = 0 ] || { echo "metrics: $errors non-2xx answers ($mode)" >&2; exit 1; }
    awk -v n="$ok" -v s="$secs" -v t="$((t1 - t0))" -v hz="$HZ" \
        'BEGIN { printf "%.0f %.1f\n", n / s, t * 1e6 / hz / n }'
}

for mode in $MODES; do : >"$tmp/$mode.rates"; done
for n in $(seq "$RUNS"); do
    for mode in $MODES; do
        one "$mode" "$n" >>"$tmp/$mode.rates" || exit 1
    done
done
col() { awk -v c="$1" '{ print $c }' "$2"; }
off=$(col 1 "$tmp/off.rates" | median)
on=$(col 1 "$tmp/on.rates" | median)
off_cpu=$(col 2 "$tmp/off.rates" | median)
on_cpu=$(col 2 "$tmp/on.rates" | median)
lines=$(grep -c '"request_id"' "$tmp/log")
printf 'metrics: durable submits/s (native API, 64 clients, median of %d): metrics and JSON log on %s vs off %s  ratio %s  cost %s%% (goal < 5%%)\n' \
    "$RUNS" "$on" "$off" "$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')" \
    "$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.1f", (1 - a / b) * 100 }')"
printf 'metrics: daemon CPU per submit: on %s us vs off %s us  cost %s%%\n' "$on_cpu" "$off_cpu" \
    "$(awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "%.1f", (a / b - 1) * 100 }')"
printf 'metrics: runs (submits/s, CPU us per submit) on: %s; off: %s; JSON access lines written: %s\n' \
    "$(paste -sd, "$tmp/on.rates")" "$(paste -sd, "$tmp/off.rates")" "$lines"
if [ -n "$BASE" ]; then
    base=$(col 1 "$tmp/base.rates" | median)
    base_cpu=$(col 2 "$tmp/base.rates" | median)
    printf 'metrics: baseline %s: %s submits/s, %s us CPU per submit (runs %s); off vs baseline: rate ratio %s, CPU %s%%\n' \
        "$BASE" "$base" "$base_cpu" "$(paste -sd, "$tmp/base.rates")" \
        "$(awk -v a="$off" -v b="$base" 'BEGIN { printf "%.3f", a / b }')" \
        "$(awk -v a="$off_cpu" -v b="$base_cpu" 'BEGIN { printf "%+.1f", (a / b - 1) * 100 }')"
fi
