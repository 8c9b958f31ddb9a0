#!/usr/bin/env bash
# Network mode allow of `jobrt sandbox`: the task reaches only --allow-domain
# hosts, through the proxy the helper runs (HTTP_PROXY and friends set);
# everything else gets 403 and no direct route exists. A tiny HTTP server on
# the host's 127.0.0.1 stands in for the outside. Prints ok/not ok/skip lines.
set -u
cd "$(dirname "$0")/../.."
BIN=${JOBRT_BIN:-./jobrt}
W=$(mktemp -d /tmp/jobrt-sba.XXXXXX)
chmod 755 "$W"
TAG="e2e-allow-$$"
SERVER=

cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

ok() { echo "ok - sandbox allow: $1"; }
not_ok() {
  echo "not ok - sandbox allow: $1"
  echo "#   status: $(cat "$W/status" 2>/dev/null)"
  echo "#   output: $(head -c 800 "$W/out" 2>/dev/null | tr '\n' '|')"
}
skip() { echo "skip - sandbox allow: $1 # $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

N=0
sb() {
  N=$((N + 1))
  timeout -k 5 60 "$BIN" sandbox --cgroup-name "$TAG-$N" "$@" 3>"$W/status" >"$W/out" 2>"$W/err"
  echo $? >"$W/rc"
}
outcome() { sed -n 's/^{"outcome":"\([a-z_]*\)".*/\1/p' "$W/status"; }
num() { grep -o "\"$1\":-\{0,1\}[0-9]*" "$W/status" | head -1 | cut -d: -f2; }
is() { [ "$(outcome)" = "$1" ] && [ "$(cat "$W/rc")" = 0 ]; }
out_has() { grep -q -- "$1" "$W/out"; }
err_has() { grep -q -- "$1" "$W/err"; }

"$BIN" sandbox-check >"$W/check" 2>&1
has() { grep -q "^$1 \+yes" "$W/check"; }
if [ "$(id -u)" != 0 ] || ! has userns || ! has netns; then
  skip "all" "needs root with user and network namespaces"
  exit 0
fi
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then
  skip "all" "needs curl and python3"
  exit 0
fi

mkdir -p "$W/www"
echo "served-$$" >"$W/www/file.txt"
PORT=$((21000 + $$ % 20000))
(cd "$W/www" && exec timeout 120 python3 -m http.server "$PORT" --bind 127.0.0.1) >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

# Inside, NO_PROXY covers localhost (the sandbox's own loopback); these tests
# reach the host's localhost through the proxy, so they clear it.
CURL='export NO_PROXY= no_proxy=; curl -sS -m 10 -w " code=%{http_code}\n"'

sb --network allow --allow-domain localhost -- /bin/sh -c "env | grep -i _proxy= | sort"
check "the proxy variables are set" eval 'is exited && out_has "^HTTP_PROXY=http://127.0.0.1:3128$" &&
  out_has "^https_proxy=http://127.0.0.1:3128$" && out_has "^NO_PROXY=localhost,127.0.0.1$"'

sb --network allow --allow-domain localhost -- /bin/sh -c "$CURL http://localhost:$PORT/file.txt"
check "an allowed domain is reached through the proxy (plain http)" eval 'is exited &&
  [ "$(num exit_code)" = 0 ] && out_has "^served-$$$" && out_has "^ code=200$"'

sb --network allow --allow-domain LOCALHOST -- /bin/sh -c "$CURL -p http://localhost:$PORT/file.txt"
check "CONNECT to an allowed domain tunnels (case-insensitive match)" eval 'is exited &&
  [ "$(num exit_code)" = 0 ] && out_has "^served-$$$" && out_has "^ code=200$"'

sb --network allow --allow-domain localhost -- /bin/sh -c "$CURL http://127.0.0.1:$PORT/file.txt; $CURL -p http://127.0.0.1:$PORT/file.txt"
check "a host not in the list is refused with 403 and logged" eval 'is exited &&
  out_has "not in this task.s network allow-list code=403" && ! out_has "served-" &&
  err_has "proxy: refused GET 127.0.0.1:$PORT" && err_has "proxy: refused CONNECT 127.0.0.1:$PORT"'

sb --network allow --allow-domain '*.localhost' -- /bin/sh -c "$CURL http://localhost:$PORT/file.txt"
check "a *.suffix entry does not match the bare suffix" eval 'is exited && out_has "code=403"'

# Someone else's DNS pointing a name under an allowed *.suffix at the host's
# loopback: a private /etc/hosts, bound over the real one in a mount
# namespace of the helper's own, stands in for it.
printf '127.0.0.1 localhost\n127.0.0.1 svc.jobrt-test.internal\n' >"$W/hosts"
sb_hosts() {
  N=$((N + 1))
  timeout -k 5 60 unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$W/hosts" \
    "$BIN" sandbox --cgroup-name "$TAG-$N" "$@" 3>"$W/status" >"$W/out" 2>"$W/err"
  echo $? >"$W/rc"
}
sb_hosts --network allow --allow-domain '*.jobrt-test.internal' -- /bin/sh -c "$CURL http://svc.jobrt-test.internal:$PORT/file.txt; $CURL -p http://svc.jobrt-test.internal:$PORT/file.txt"
check "a *.suffix match that resolves to the host's loopback is refused" eval 'is exited &&
  out_has "host-internal address.* code=403" && ! out_has "served-" &&
  err_has "refused GET svc.jobrt-test.internal:$PORT: it resolves to a host-internal" &&
  err_has "refused CONNECT svc.jobrt-test.internal:$PORT"'
sb_hosts --network allow --allow-domain svc.jobrt-test.internal -- /bin/sh -c "$CURL http://svc.jobrt-test.internal:$PORT/file.txt"
check "the same name listed exactly is reached" eval 'is exited && out_has "^served-$$$"'

sb --network allow --allow-domain localhost -- /bin/sh -c "curl -sS -m 5 --noproxy '*' http://localhost:$PORT/file.txt; echo rc=\$?; exec 5<>/dev/tcp/127.0.0.1/$PORT && echo CONNECTED"
check "a direct connection without the proxy fails" eval 'is exited && out_has "^rc=7$" &&
  ! out_has CONNECTED && ! out_has "served-"'

sb --network allow -- /bin/sh -c "$CURL http://localhost:$PORT/file.txt; $CURL -p http://localhost:$PORT/file.txt"
check "allow without domains refuses everything" eval 'is exited && out_has "code=403" &&
  ! out_has "served-" && err_has "refused GET localhost" && err_has "refused CONNECT localhost"'

sb --network allow --allow-domain localhost -- /bin/sh -c "$CURL http://localhost:1/x"
check "an unreachable allowed host is 502" eval 'is exited && out_has "code=502"'

sb --network allow --allow-domain localhost --timeout 1 -- /bin/bash -c \
  "export NO_PROXY= no_proxy=; exec 5<>/dev/tcp/127.0.0.1/3128; sleep 30"
check "the timeout holds while a proxy connection is open" eval 'is timeout && [ "$(num wall_ms)" -lt 5000 ]'

sb --network allow --allow-domain 'bad domain' -- /bin/true
check "a malformed --allow-domain is an options error" eval 'is setup_error && grep -q "allow-domain" "$W/status"'
