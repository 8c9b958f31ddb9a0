#!/usr/bin/env bash
# HTTP benchmark on loopback: jobrt's /jobrt/healthz, a Lua JSON route
# (bench/site/bench/hello.lua) and a job read through the native API
# (GET /jobrt/v1/jobs/{id}: HTTP Basic, a store read, the job's JSON)
# against an nginx started here with one process, measured by wrk in the
# same run. nginx serves a static file, a `return`, and, with
# libnginx-mod-http-lua (installed here when missing), the peers of the two
# Lua routes: content_by_lua_block answering the same path with the same
# JSON (cjson: the hello object; the same job, decoded once at start).
# Prints req/s, p50/p99 latency, the ratios to nginx's static file and to
# the nginx+Lua peer, and the daemon's RSS afterwards.
#
# Environment: JOBRT_BIN (default ./jobrt), BENCH_DURATION (10s),
# BENCH_RUNS (1; with more, cases take turns and the median is printed),
# BENCH_CONNECTIONS (32), BENCH_THREADS (1), BENCH_WARMUP (2s).
set -u
cd "$(dirname "$0")/.." || exit 1

JOBRT_BIN="${JOBRT_BIN:-./jobrt}"
DURATION="${BENCH_DURATION:-10s}"
RUNS="${BENCH_RUNS:-1}"
CONNS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-1}"
WARMUP="${BENCH_WARMUP:-2s}"

for tool in wrk nginx curl; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        echo "http: $tool not found (make bench-deps installs wrk and nginx-light)" >&2
        exit 1
    fi
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
LUA_MOD=/usr/lib/nginx/modules/ngx_http_lua_module.so
NDK_MOD=/usr/lib/nginx/modules/ndk_http_module.so
if [ ! -f "$LUA_MOD" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "http: installing libnginx-mod-http-lua for the nginx+Lua peer" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-http-lua >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-http-lua >/dev/null 2>&1; }
fi
[ -f "$LUA_MOD" ] && [ -f "$NDK_MOD" ] || { LUA_MOD=; echo "http: no ngx_http_lua_module: the nginx+Lua peer is left out" >&2; }
AUTH_HEADER="Authorization: Basic $(printf 'bench:bench-password' | base64)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/jobrt-bench-http.XXXXXX")"
NGINX_PID=""
JOBRT_PID=""

stop() {
    local pid="$1" i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

cleanup() {
    stop "$JOBRT_PID"
    stop "$NGINX_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nobody listens on now. Starting the server can still lose a race;
# the callers then try another port.
pick_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_http PID URL: poll until URL answers 200 (about 10 s at most) or PID dies.
wait_http() {
    local pid="$1" url="$2"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

start_nginx() {
    local dir="$TMP/nginx" port temp="" mod attempt
    mkdir -p "$dir/html" "$dir/logs"
    printf '{}' > "$dir/html/static.json"
    # Keep every temporary directory in $dir, for the modules this build has.
    for mod in client_body proxy fastcgi uwsgi scgi; do
        if [ "$mod" = client_body ] || ! "$NGINX" -V 2>&1 | grep -q -- "--without-http_${mod}_module"; then
            temp="$temp    ${mod}_temp_path $dir/${mod}_temp;"$'\n'
        fi
    done
    local lua_load="" lua_init="" lua_locs=""
    if [ -n "$LUA_MOD" ]; then
        lua_load="load_module $NDK_MOD;"$'\n'"load_module $LUA_MOD;"
        # The same JSON as jobrt's routes: the hello object, and the job
        # jobrt answered with (decoded once, encoded per request).
        lua_init="    init_by_lua_block {
        cjson = require \"cjson\"
        local f = io.open(\"$TMP/job.json\")
        job = cjson.decode(f:read(\"*a\"))
        f:close()
    }"
        lua_locs="        location ~ ^/bench/hello/(?<name>[^/]+)\$ {
            default_type application/json;
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                ngx.print(cjson.encode({ hello = ngx.var.name, n = #args }))
            }
        }
        location ~ ^/jobrt/v1/jobs/(?<id>[^/]+)\$ {
            default_type application/json;
            content_by_lua_block {
                if ngx.var.id ~= job.id or not ngx.var.http_authorization then
                    return ngx.exit(404)
                end
                ngx.print(cjson.encode(job))
            }
        }"
    fi
    for attempt in 1 2 3 4 5; do
        port="$(pick_port)" || return 1
        cat > "$dir/nginx.conf" <<EOF
$lua_load
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
$temp    default_type application/octet-stream;
$lua_init
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
        location = /static.json { default_type application/json; }
        location = /return {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
$lua_locs
    }
}
EOF
        "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
            >"$dir/logs/stdout.log" 2>&1 &
        NGINX_PID=$!
        if wait_http "$NGINX_PID" "http://127.0.0.1:$port/static.json"; then
            NGINX_URL="http://127.0.0.1:$port"
            return 0
        fi
        stop "$NGINX_PID"
        NGINX_PID=""
    done
    echo "http: nginx did not start; its log:" >&2
    tail -n 20 "$dir/logs/error.log" "$dir/logs/stdout.log" >&2
    return 1
}

start_jobrt() {
    local port attempt
    for attempt in 1 2 3 4 5; do
        port="$(pick_port)" || return 1
        "$JOBRT_BIN" serve -c bench/http.yaml --listen "127.0.0.1:$port" \
            --data-dir "$TMP/jobrt-data" >"$TMP/jobrt.log" 2>&1 &
        JOBRT_PID=$!
        if wait_http "$JOBRT_PID" "http://127.0.0.1:$port/jobrt/healthz"; then
            JOBRT_URL="http://127.0.0.1:$port"
            return 0
        fi
        stop "$JOBRT_PID"
        JOBRT_PID=""
    done
    echo "http: jobrt did not serve; its log:" >&2
    tail -n 20 "$TMP/jobrt.log" >&2
    return 1
}

# expect URL TEXT...: the endpoint answers 200 with a body holding every TEXT
# (JSON key order is the encoder's business).
expect() {
    local url="$1" got t
    shift
    got="$(curl -fsS --max-time 2 "$url" 2>&1)"
    for t in "$@"; do
        case "$got" in
        *"$t"*) ;;
        *)
            echo "http: $url answered '$got', expected it to contain '$t'" >&2
            return 1
            ;;
        esac
    done
}

# measure NAME URL: one wrk run; appends "rps p50_ms p99_ms" to $TMP/NAME.
# Failed requests make the run invalid: it is reported and not counted.
# The job reads carry the credential.
measure() {
    local name="$1" url="$2" out="$TMP/wrk.out" h=()
    case "$name" in *job*) h=(-H "$AUTH_HEADER") ;; esac
    if ! wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${h[@]}" "$url" >"$out" 2>&1; then
        echo "http: wrk failed on $url:" >&2
        cat "$out" >&2
        return 1
    fi
    if grep -qE 'Non-2xx|Socket errors' "$out"; then
        echo "http.$name: errors during the run:" $(grep -E 'Non-2xx|Socket errors' "$out") >&2
        return 1
    fi
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/)  return v * 60000
            if (v ~ /s$/)  return v * 1000
            return v + 0
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        END { if (rps == "") exit 1; printf "%.0f %.3f %.3f\n", rps, p50, p99 }
    ' "$out" >>"$TMP/$name" || { echo "http: cannot read wrk output for $name" >&2; return 1; }
}

# The median run (by req/s) of a case: "rps p50 p99".
median() {
    sort -n "$TMP/$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}

cases=()
urls=()
status=0

# jobrt first: the job it stores is the one nginx+Lua answers with.
JOB=""
if start_jobrt; then
    JOB="$(curl -fsS --max-time 5 -u bench:bench-password -H 'Content-Type: application/json' \
        -d '{"title":"bench","labels":{"kind":"bench"},"tasks":[{"alias":"t","command":["true"]}]}' \
        "$JOBRT_URL/jobrt/v1/jobs" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
    [ -n "$JOB" ] && curl -fsS --max-time 5 -u bench:bench-password \
        "$JOBRT_URL/jobrt/v1/jobs/$JOB" >"$TMP/job.json" || { echo "http: no job to read" >&2; JOB=""; }
fi
[ -n "$JOB" ] || LUA_MOD=""
if start_nginx; then
    cases+=(nginx_static nginx_return)
    urls+=("$NGINX_URL/static.json" "$NGINX_URL/return")
    expect "$NGINX_URL/return" '{"status":"ok"}' || status=1
    if [ -n "$LUA_MOD" ]; then
        cases+=(nginx_lua_json nginx_lua_job)
        urls+=("$NGINX_URL/bench/hello/world?a=1&b=2" "$NGINX_URL/jobrt/v1/jobs/$JOB")
        expect "$NGINX_URL/bench/hello/world?a=1&b=2" '"hello":"world"' '"n":0' || status=1
    fi
else
    status=1
fi
if [ -n "$JOBRT_PID" ]; then
    cases+=(healthz lua_json)
    urls+=("$JOBRT_URL/jobrt/healthz" "$JOBRT_URL/bench/hello/world?a=1&b=2")
    expect "$JOBRT_URL/jobrt/healthz" '{"status":"ok"}' || status=1
    expect "$JOBRT_URL/bench/hello/world?a=1&b=2" '"hello":"world"' '"n":0' || status=1
    if [ -n "$JOB" ]; then
        cases+=(job_get)
        urls+=("$JOBRT_URL/jobrt/v1/jobs/$JOB")
    fi
    rss_start="$(awk '/^VmRSS/ { print $2 }' "/proc/$JOBRT_PID/status")"
else
    status=1
fi
[ ${#cases[@]} -gt 0 ] || exit 1

echo "http: wrk -t$THREADS -c$CONNS -d$DURATION, keep-alive, 127.0.0.1, $RUNS run(s) per case;" \
     "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||') with 1 process; $(nproc) CPUs shared with wrk"

# Warm every server up once, then take turns so that drift on a noisy
# machine spreads over all cases alike.
for i in "${!cases[@]}"; do
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -H "$AUTH_HEADER" "${urls[$i]}" >/dev/null 2>&1
done
for run in $(seq "$RUNS"); do
    for i in "${!cases[@]}"; do
        measure "${cases[$i]}" "${urls[$i]}" || status=1
    done
done

base=""
[ -s "$TMP/nginx_static" ] && base="$(median nginx_static | cut -d' ' -f1)"
ratio() { # name label: "; 0.55x label (N req/s)" against a case's median
    local r
    [ -s "$TMP/$1" ] || return 0
    r="$(median "$1" | cut -d' ' -f1)"
    awk -v a="$rps" -v b="$r" -v l="$2" 'BEGIN { printf "; %.2fx %s (%d req/s)", a / b, l, b }'
}
for name in "${cases[@]}"; do
    [ -s "$TMP/$name" ] || continue
    read -r rps p50 p99 < <(median "$name")
    line="$(printf 'http.%s: %s req/s, p50 %.2f ms, p99 %.2f ms' "$name" "$rps" "$p50" "$p99")"
    case "$name" in
    healthz) line="$line$(ratio nginx_static "nginx static")" ;;
    lua_json) line="$line$(ratio nginx_static "nginx static")$(ratio nginx_lua_json "nginx+Lua, the same JSON (goal >= 0.5x)")" ;;
    job_get) line="$line$(ratio nginx_lua_job "nginx+Lua answering the same job from memory")" ;;
    esac
    echo "$line"
done

if [ -n "$JOBRT_PID" ] && [ -r "/proc/$JOBRT_PID/status" ]; then
    awk -v start="$rss_start" '
        /^VmRSS/ { rss = $2 } /^VmHWM/ { hwm = $2 }
        END { printf "http.jobrt_rss: %d kB after the runs (%d kB before, peak %d kB)\n", rss, start, hwm }
    ' "/proc/$JOBRT_PID/status"
    if ! kill -0 "$JOBRT_PID" 2>/dev/null; then
        echo "http: jobrt died during the runs" >&2
        status=1
    fi
fi
# At level warn the daemon should have had nothing to say.
if [ -s "$TMP/jobrt.log" ]; then
    echo "http: jobrt logged $(wc -l <"$TMP/jobrt.log") line(s), the last ones:" >&2
    tail -n 5 "$TMP/jobrt.log" >&2
fi
exit "$status"
