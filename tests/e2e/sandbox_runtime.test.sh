#!/usr/bin/env bash
# `jobrt sandbox` beyond escapes: a root filesystem folder as the image, the
# helper killed outright (its task dies with it), the start-up sweep of stale
# cgroups (`sandbox-check --clean-stale`) and the probe table.
set -u
cd "$(dirname "$0")/../.."
BIN=${JOBRT_BIN:-./jobrt}
W=$(mktemp -d /tmp/jobrt-sbr.XXXXXX)
chmod 755 "$W"
PARENT="jobrt-e2e-$$"
BG=()

cleanup() {
  for p in "${BG[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$BIN" sandbox-check --cgroup-parent "$PARENT" --clean-stale >/dev/null 2>&1
  for d in /sys/fs/cgroup/*/"$PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT

ok() { echo "ok - sandbox: $1"; }
not_ok() {
  echo "not ok - sandbox: $1"
  echo "#   status: $(cat "$W/status" 2>/dev/null)"
  echo "#   output: $(head -c 600 "$W/out" 2>/dev/null | tr '\n' '|')"
}
skip() { echo "skip - sandbox: $1 # $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
outcome() { sed -n 's/^{"outcome":"\([a-z_]*\)".*/\1/p' "$W/status"; }

"$BIN" sandbox-check >"$W/check" 2>&1
check "sandbox-check prints the table and exits 0" eval '[ $? = 0 ] &&
  grep -q "^layer \+ok \+detail" "$W/check" && grep -q "^seccomp " "$W/check"'
has() { grep -q "^$1 \+yes" "$W/check"; }
if [ "$(id -u)" != 0 ] || ! has userns || ! has mountns || ! has pidns; then
  skip "runtime" "needs root with user, mount and pid namespaces"
  exit 0
fi

# -- an image folder -------------------------------------------------------
IMG="$W/img"
mkdir -p "$IMG/usr/bin" "$IMG/usr/lib" "$IMG/usr/lib64" "$IMG/etc" "$W/outdir"
ln -s usr/bin "$IMG/bin"
ln -s usr/lib "$IMG/lib"
ln -s usr/lib64 "$IMG/lib64"
cp /usr/bin/bash /usr/bin/cat "$IMG/usr/bin/"
for lib in $(ldd /usr/bin/bash /usr/bin/cat | awk '/=> \// {print $3} /^[[:space:]]\// {print $1}' | sort -u); do
  dest="$IMG/usr${lib#/usr}"
  mkdir -p "$(dirname "$dest")"
  cp -L "$lib" "$dest"
done
echo "image-marker" >"$IMG/etc/marker"
chmod -R a+rX "$IMG"
timeout -k 5 60 "$BIN" sandbox --image "$IMG" --bind-rw "$W/outdir:/outputs" -- /bin/bash -c '
  cat /etc/marker
  [ ! -e /etc/passwd ] && [ ! -e /usr/bin/perl ] && echo isolated
  echo made >/outputs/f' 3>"$W/status" >"$W/out.log" 2>&1
cp "$W/out.log" "$W/out"
check "a root filesystem folder is the image" eval '[ "$(outcome)" = exited ] &&
  grep -q "\"exit_code\":0" "$W/status" && grep -q "^image-marker$" "$W/out" &&
  grep -q "^isolated$" "$W/out" && [ -f "$W/outdir/f" ]'

# -- a spool: the output as line records; the outcome on the status fd
# after the wakes and, with no daemon to acknowledge it ('k'), appended to
# the spool as its last record; bounded by --log-cap
SPOOL="$W/task.log"
timeout -k 5 60 "$BIN" sandbox --cgroup-parent "$PARENT" --spool "$SPOOL" --status-fd 4 \
  --orphan-timeout 0 -- /bin/sh -c 'echo out; echo err >&2; printf last' 4>"$W/status" \
  >"$W/out" 2>&1
# stdout and stderr are two pipes: the order within one is kept, across
# the two it is whichever the helper read first.
check "--spool keeps the output as line records, the outcome last" eval '
  [ "$(head -n 3 "$SPOOL" | sort)" = "$(printf "1last\n1out\n2err")" ] &&
  [ "$(grep "^1" "$SPOOL")" = "$(printf "1out\n1last")" ] &&
  sed -n 4p "$SPOOL" | grep -q "^R{\"outcome\":\"exited\",\"exit_code\":0," &&
  [ "$(wc -l < "$SPOOL")" = 4 ] && grep -q "^o*{\"outcome\":\"exited\"" "$W/status" &&
  [ ! -s "$W/out" ]'
rm -f "$SPOOL"
timeout -k 5 60 "$BIN" sandbox --cgroup-parent "$PARENT" --spool "$SPOOL" --status-fd 4 \
  --gate-fd 5 -- /bin/true 4>"$W/status" 5</dev/null >"$W/out" 2>&1
check "a helper that never started keeps only its outcome" eval '
  [ "$(wc -l < "$SPOOL")" = 1 ] && grep -q "^R{\"outcome\":\"canceled\"" "$SPOOL"'
rm -f "$SPOOL"
timeout -k 5 60 "$BIN" sandbox --cgroup-parent "$PARENT" --spool "$SPOOL" --status-fd 4 \
  --log-cap 100 -- /bin/sh -c 'i=0; while [ $i -lt 1000 ]; do echo "line $i"; i=$((i+1)); done' \
  4>"$W/status" >"$W/out" 2>&1
check "--log-cap bounds the spool: lines within it, then one note" eval '
  [ "$(grep -c "^1line " "$SPOOL")" = 13 ] &&
  grep -q "^2\[jobrt\] output truncated: more than 100 bytes$" "$SPOOL" &&
  [ "$(stat -c %s "$SPOOL")" -lt 500 ]'

# -- the helper killed outright: the task must not survive it --------------
MARK=$((50000 + $$ % 10000))
"$BIN" sandbox --cgroup-parent "$PARENT" --cgroup-name crashed -- /bin/sleep "$MARK" \
  3>/dev/null >/dev/null 2>&1 &
HELPER=$!
disown "$HELPER" 2>/dev/null || true
BG+=($HELPER)
for _ in $(seq 50); do pgrep -f "^/bin/sleep $MARK" >/dev/null && break; sleep 0.1; done
kill -9 "$HELPER"
wait "$HELPER" 2>/dev/null
gone=1
for _ in $(seq 50); do pgrep -f "^/bin/sleep $MARK" >/dev/null || { gone=0; break; }; sleep 0.1; done
check "SIGKILL of the helper takes the task down" test "$gone" = 0
check "a crashed helper leaves its cgroups" test -d "/sys/fs/cgroup/pids/$PARENT/crashed"

# -- the start-up sweep ------------------------------------------------------
if has pids_limit; then
  mkdir -p "/sys/fs/cgroup/pids/$PARENT/stale-live"
  sleep $((MARK + 1)) &
  LIVE=$!
  disown "$LIVE"
  BG+=($LIVE)
  echo "$LIVE" >"/sys/fs/cgroup/pids/$PARENT/stale-live/cgroup.procs"
  "$BIN" sandbox-check --cgroup-parent "$PARENT" --clean-stale >"$W/out" 2>&1
  sleep 0.2
  check "--clean-stale kills and removes stale cgroups" eval 'grep -q "^clean-stale: removed [1-9]" "$W/out" &&
    [ ! -d "/sys/fs/cgroup/pids/$PARENT/stale-live" ] && [ ! -d "/sys/fs/cgroup/pids/$PARENT/crashed" ] &&
    ! kill -0 "$LIVE" 2>/dev/null &&
    [ -z "$(find /sys/fs/cgroup -maxdepth 3 -mindepth 3 -path "*/$PARENT/*" -type d)" ]'
else
  skip "--clean-stale kills and removes stale cgroups" "no pids cgroup controller"
fi
