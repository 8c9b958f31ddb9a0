#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, benchmarks and `make pg-up`:
#   tools/pg.sh up DIR     initdb in DIR/data (once), start the server on a
#                          free loopback port (sockets in DIR), print its URL;
#                          started again, it takes the port it had
#   tools/pg.sh down DIR   stop it by the pid in DIR/data/postmaster.pid
#   tools/pg.sh url DIR    print the URL of the server running in DIR
# As root, the server runs as the user "postgres" (PostgreSQL refuses root),
# which then owns DIR. Trust authentication, loopback only: for tests.
set -eu
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: tools/pg.sh up|down|url DIR" >&2
    exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
    echo "tools/pg.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
fi
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"

case "$cmd" in
up)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if [ -f "$dir/data/postmaster.pid" ] && kill -0 "$(head -1 "$dir/data/postmaster.pid")" 2>/dev/null; then
        cat "$dir/url"
        exit 0
    fi
    last=""
    [ -f "$dir/url" ] && last=$(sed -n 's#.*:\([0-9]*\)/.*#\1#p' "$dir/url")
    for try in 1 2 3 4 5 6 7 8; do
        port=$(( (RANDOM % 30000) + 20000 + try ))
        [ -n "$last" ] && [ "$try" -le 4 ] && port=$last
        if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
            -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c fsync=on" start >/dev/null 2>&1; then
            echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url"
            cat "$dir/url"
            exit 0
        fi
    done
    echo "tools/pg.sh: the server did not start; see $dir/server.log" >&2
    tail -5 "$dir/server.log" >&2 || true
    exit 1
    ;;
down)
    pidfile="$dir/data/postmaster.pid"
    [ -f "$pidfile" ] || exit 0
    pid=$(head -1 "$pidfile")
    kill -INT "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
url)
    cat "$dir/url"
    ;;
*)
    echo "usage: tools/pg.sh up|down|url DIR" >&2
    exit 2
    ;;
esac
