# Sourced by the benchmarks that run a jobrt daemon: a scratch folder
# removed on exit, a free loopback port, the daemon started on a deployment
# file and stopped by pid, and the median of numbers on stdin.
#   bench_init NAME       sets BIN, DUR, tmp; the EXIT trap stops and removes
#   bench_start YAML DATA  starts the daemon; sets port and pid
#   bench_stop             stops it
#   median                 the median of the numbers on stdin, one per line
BIN=${JOBRT_BIN:-./jobrt}
DUR=${BENCH_DURATION:-10s}
pid=
port=

bench_cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }

bench_init() {
    bench_name=$1
    tmp=$(mktemp -d)
    trap bench_cleanup EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_start() { # yaml data_dir
    port=$(free_port)
    "$BIN" serve -c "$1" --listen "127.0.0.1:$port" --data-dir "$2" 2>>"$tmp/log" &
    pid=$!
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$port/jobrt/healthz" >/dev/null && return 0
        sleep 0.05
    done
    echo "$bench_name: the daemon did not start" >&2; cat "$tmp/log" >&2; exit 1
}

bench_stop() { kill "$pid"; wait "$pid" 2>/dev/null; pid=; }

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
