#!/usr/bin/env bash
# Kuscia watch fan-out: the latency from a job's state change in the core to
# the watch frame's arrival, p50 and p99, with 500 concurrent watchers
# against the same figure with one watcher, measured on the same daemon in
# the same run (BENCH_RUNS pairs, medians), while other jobs are created,
# run and deleted beside it. The helper is bench/kuscia_watch.mjs (Node,
# node:http only). KUSCIA_WATCHERS changes the 500.
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
DUR=${BENCH_DURATION:-10s}
RUNS=${BENCH_RUNS:-1}
MANY=${KUSCIA_WATCHERS:-500}
secs=${DUR%s}
case "$secs" in ''|*[!0-9]*) echo "kuscia_watch: BENCH_DURATION must be whole seconds (got $DUR)" >&2; exit 1 ;; esac
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
# One socket per watcher on each side, plus the daemon's own files.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

token=kuscia-bench-token
cat > "$tmp/jobrt.yaml" <<YAML
log: {level: error}
limits: {max_connections: 4096}
sandbox: {images: {host: /}}
users:
  bench: {password: bench, roles: [admin]}
surfaces:
  kuscia:
    tokens: [$token]
    domains: [alice, bob]
    app_images:
      tick: {image: host, command: [sleep, "600"]}
      quick: {image: host, command: ["true"]}
YAML

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve -c "$tmp/jobrt.yaml" --listen "127.0.0.1:$port" --data-dir "$tmp/data" 2>>"$tmp/log" &
pid=$!
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$port/jobrt/healthz" >/dev/null && break
    sleep 0.05
done

if ! node bench/kuscia_watch.mjs "http://127.0.0.1:$port" "$token" bench:bench "$secs" "$RUNS" 1 "$MANY" >"$tmp/out"; then
    echo "kuscia_watch: FAILED; daemon log tail:" >&2
    tail -20 "$tmp/log" >&2
    exit 1
fi
read -r _ _ one50 one99 one_n _ < <(grep '^PHASE 1 ' "$tmp/out")
read -r _ _ many50 many99 many_n _ first50 < <(grep "^PHASE $MANY " "$tmp/out")
printf 'kuscia_watch: state change -> frame, %s watchers: p50 %s ms p99 %s ms (%s samples, first of them p50 %s ms)  vs 1 watcher: p50 %s ms p99 %s ms (%s samples)  ratio p50 %.1fx p99 %.1fx  (%s runs of %s each, medians)\n' \
    "$MANY" "$many50" "$many99" "$many_n" "$first50" "$one50" "$one99" "$one_n" \
    "$(awk -v a="$many50" -v b="$one50" 'BEGIN { print a / (b > 0 ? b : 1) }')" \
    "$(awk -v a="$many99" -v b="$one99" 'BEGIN { print a / (b > 0 ? b : 1) }')" "$RUNS" "$DUR"
