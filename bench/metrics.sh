#!/usr/bin/env bash
# What the operator's view costs: durable submits/s through the native API
# with metrics counted and the log written as JSON (scraped once a second
# meanwhile) against the same build with metrics off and the text log, in
# the same run. Both write one access line per request (log level info).
# The goal: under 5% fewer submits/s.
#
# Both daemons run side by side and take turns under wrk, RUNS times
# (BENCH_RUNS, at least 7), the order swapped every turn; what is printed
# is the median of the ratios of the runs side by side, which load from
# elsewhere on the machine moves far less than the rates themselves; and
# the daemons' CPU time per submit (from /proc; the daemon is one thread,
# so its rate is about the inverse of that time while the clients keep it
# busy). Each run lasts BENCH_METRICS_DURATION (default 5s). Then one
# access line's CPU time as text and as JSON, measured in-process
# (bench/metrics_log.lua), against the CPU time of one submit. Last, when
# valgrind is there, the instructions one submit costs each daemon under
# callgrind (bench/metrics_client.py: 100 and 400 submits one at a time,
# the difference over 300): a count other load does not move.
# BENCH_BASELINE_BIN=PATH adds a third daemon to the turns, e.g. a build
# from before metrics (text log, no metrics key), for what the always-on
# part costs.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_init metrics
RUNS=${BENCH_RUNS:-7}
[ "$RUNS" -lt 7 ] && RUNS=7
DUR=${BENCH_METRICS_DURATION:-5s}
TOKEN=bench-scrape-0123456789abcdef
BASE=${BENCH_BASELINE_BIN:-}
MODES="off on"
[ -n "$BASE" ] && MODES="off on base"
HZ=$(getconf CLK_TCK)
declare -A PID PORT

stop_all() {
    for m in $MODES; do
        [ -n "${PID[$m]:-}" ] && kill "${PID[$m]}" 2>/dev/null && wait "${PID[$m]}" 2>/dev/null
    done
    [ -n "${SCRAPER:-}" ] && kill "$SCRAPER" 2>/dev/null
    rm -rf "$tmp"
}
trap stop_all EXIT

for mode in $MODES; do
    {
        echo "users:"
        echo "  bench: {password: bench, roles: [admin]}"
        case $mode in
        on) echo "log: {level: info, format: json}"; echo "metrics: {token: $TOKEN}" ;;
        off) echo "log: {level: info, format: text}"; echo "metrics: {enabled: false}" ;;
        base) echo "log: {level: info}" ;;
        esac
    } >"$tmp/$mode.yaml"
    bin=$BIN
    [ "$mode" = base ] && bin=$BASE
    PORT[$mode]=$(free_port)
    "$bin" serve -c "$tmp/$mode.yaml" --listen "127.0.0.1:${PORT[$mode]}" --data-dir "$tmp/data-$mode" \
        2>>"$tmp/$mode.log" &
    PID[$mode]=$!
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:${PORT[$mode]}/jobrt/healthz" >/dev/null && break
        sleep 0.05
    done
    curl -sf "http://127.0.0.1:${PORT[$mode]}/jobrt/healthz" >/dev/null ||
        { echo "metrics: the $mode daemon did not start" >&2; cat "$tmp/$mode.log" >&2; exit 1; }
done

# Prometheus's part: a scrape every second of the daemon with metrics on.
(while sleep 1; do
    curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${PORT[on]}/jobrt/metrics" >/dev/null || exit 0
done) &
SCRAPER=$!

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# one MODE: one measured wrk run; prints submits/s and CPU us per submit.
one() {
    local mode=$1 out t0 t1 ok secs errors
    t0=$(ticks "${PID[$mode]}")
    out=$(wrk -t2 -c64 -d"$DUR" -s bench/core_submit.lua "http://127.0.0.1:${PORT[$mode]}/jobrt/v1/jobs")
    t1=$(ticks "${PID[$mode]}")
    read -r _ ok secs errors <<<"$(grep '^SUBMITS' <<<"$out")"
    [ "${errors:-1}" = 0 ] || { echo "metrics: ${errors:-?} non-2xx answers ($mode)" >&2; return 1; }
    awk -v n="$ok" -v s="$secs" -v t="$((t1 - t0))" -v hz="$HZ" \
        'BEGIN { printf "%.0f %.1f\n", n / s, t * 1e6 / hz / n }'
}

for mode in $MODES; do : >"$tmp/$mode.runs"; done
order=$MODES
for _ in $(seq "$RUNS"); do
    for mode in $order; do
        one "$mode" >>"$tmp/$mode.runs" || exit 1
    done
    order=$(tr ' ' '\n' <<<"$order" | tac | paste -sd' ')
done
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${PORT[on]}/jobrt/metrics" |
    grep -q '^jobrt_job_submissions_total{surface="native"} [1-9]' ||
    { echo "metrics: the daemon with metrics on did not count the submits" >&2; exit 1; }

col() { awk -v c="$1" '{ print $c }' "$2"; }
# The median of a / b over the runs side by side (column c of each).
paired() { paste <(col "$3" "$tmp/$1.runs") <(col "$3" "$tmp/$2.runs") | awk '{ print $1 / $2 }' | median; }
pct() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.1f", s * (r - 1) * 100 }'; }
rate_on_off=$(paired on off 1)
cpu_on_off=$(paired on off 2)
printf 'metrics: submits/s with metrics and JSON log on vs off (native API, 64 clients, %d runs of %s each, side by side): median %s vs %s, median ratio of the pairs %.3f, cost %s%% (goal < 5%%)\n' \
    "$RUNS" "$DUR" "$(col 1 "$tmp/on.runs" | median)" "$(col 1 "$tmp/off.runs" | median)" "$rate_on_off" "$(pct "$rate_on_off" -1)"
printf 'metrics: daemon CPU per submit, on vs off: median %s us vs %s us, median ratio of the pairs %.3f, cost %s%%\n' \
    "$(col 2 "$tmp/on.runs" | median)" "$(col 2 "$tmp/off.runs" | median)" "$cpu_on_off" "$(pct "$cpu_on_off" 1)"
printf 'metrics: runs (submits/s CPU-us) on: %s; off: %s; JSON lines written: %s\n' \
    "$(paste -sd, "$tmp/on.runs")" "$(paste -sd, "$tmp/off.runs")" "$(grep -c '"request_id"' "$tmp/on.log")"
read -r _ text_us json_us <<<"$("$BIN" lua bench/metrics_log.lua 2>/dev/null | grep '^LOGLINE')"
printf 'metrics: one access line: %s us as text, %s us as JSON: +%s us, %s%% of the CPU of a submit (%s us)\n' \
    "$text_us" "$json_us" "$(awk -v a="$json_us" -v b="$text_us" 'BEGIN { printf "%.2f", a - b }')" \
    "$(awk -v a="$json_us" -v b="$text_us" -v c="$(col 2 "$tmp/off.runs" | median)" 'BEGIN { printf "%.1f", (a - b) / c * 100 }')" \
    "$(col 2 "$tmp/off.runs" | median)"
if [ -n "$BASE" ]; then
    r=$(paired off base 1)
    c=$(paired off base 2)
    printf 'metrics: baseline %s: median %s submits/s, %s us CPU per submit (runs %s); off vs baseline: rate ratio %.3f (cost %s%%), CPU ratio %.3f\n' \
        "$BASE" "$(col 1 "$tmp/base.runs" | median)" "$(col 2 "$tmp/base.runs" | median)" \
        "$(paste -sd, "$tmp/base.runs")" "$r" "$(pct "$r" -1)" "$c"
    r=$(paired on base 1)
    printf 'metrics: on vs baseline: rate ratio %.3f (cost %s%%), CPU ratio %.3f\n' "$r" "$(pct "$r" -1)" "$(paired on base 2)"
fi

# Instructions per submit under callgrind (deterministic): each mode twice.
cg_instr() { # MODE N -> the daemon's instruction count
    local mode=$1 n=$2 bin=$BIN d p vp tok=
    [ "$mode" = base ] && bin=$BASE
    [ "$mode" = on ] && tok=$TOKEN
    d=$(mktemp -d "$tmp/cg.XXXXXX")
    p=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$d/out.%p" "$bin" serve -c "$tmp/$mode.yaml" \
        --listen "127.0.0.1:$p" --data-dir "$d/data" >/dev/null 2>"$d/err" &
    vp=$!
    python3 bench/metrics_client.py "$p" "$n" $tok || { kill "$vp"; wait "$vp"; return 1; }
    kill "$vp"
    wait "$vp"
    # the daemon's own process (the sandbox server it starts is another)
    grep -o 'Collected : [0-9]*' "$d/err" | awk '{ print $3 }' | sort -n | tail -1
    rm -rf "$d"
}
if command -v valgrind >/dev/null 2>&1; then
    declare -A PER
    for mode in $MODES; do
        a=$(cg_instr "$mode" 100) && b=$(cg_instr "$mode" 400) || { echo "metrics: callgrind run failed" >&2; exit 1; }
        PER[$mode]=$(( (b - a) / 300 ))
    done
    printf 'metrics: instructions per submit (callgrind): on %s, off %s: cost %s%%\n' "${PER[on]}" "${PER[off]}" \
        "$(awk -v a="${PER[on]}" -v b="${PER[off]}" 'BEGIN { printf "%.1f", (a / b - 1) * 100 }')"
    if [ -n "$BASE" ]; then
        printf 'metrics: instructions per submit (callgrind): baseline %s: off vs baseline %s%%, on vs baseline %s%%\n' \
            "${PER[base]}" "$(awk -v a="${PER[off]}" -v b="${PER[base]}" 'BEGIN { printf "%+.1f", (a / b - 1) * 100 }')" \
            "$(awk -v a="${PER[on]}" -v b="${PER[base]}" 'BEGIN { printf "%+.1f", (a / b - 1) * 100 }')"
    fi
else
    echo "metrics: valgrind not found: no instruction counts"
fi
