#!/usr/bin/env bash
# Escape and abuse tests for `jobrt sandbox`, run against the binary directly:
# each case runs one task and asserts its outcome line (fd 3) and its effects.
# Prints ok/not ok/skip lines; bounded in time; removes what it made.
set -u
cd "$(dirname "$0")/../.."
BIN=${JOBRT_BIN:-./jobrt}
W=$(mktemp -d /tmp/jobrt-sbx.XXXXXX)
chmod 755 "$W"
TAG="e2e-$$"
PIDS_TO_KILL=()

cleanup() {
  for p in "${PIDS_TO_KILL[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
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

# sb ARGS... -- CMD: runs one sandbox; status line in $W/status, output in $W/out.
N=0
sb() {
  N=$((N + 1))
  timeout -k 5 60 "$BIN" sandbox --cgroup-name "$TAG-$N" "$@" 3>"$W/status" >"$W/out" 2>&1
  echo $? >"$W/rc"
}
outcome() { sed -n 's/^{"outcome":"\([a-z_]*\)".*/\1/p' "$W/status"; }
num() { grep -o "\"$1\":-\{0,1\}[0-9]*" "$W/status" | head -1 | cut -d: -f2; }
str() { grep -o "\"$1\":\"[^\"]*\"" "$W/status" | head -1 | cut -d'"' -f4; }
is() { [ "$(outcome)" = "$1" ] && [ "$(cat "$W/rc")" = 0 ]; }
out_has() { grep -q -- "$1" "$W/out"; }

# Which layers this machine allows; a missing kernel feature is a skip.
"$BIN" sandbox-check >"$W/check" 2>&1
has() { grep -q "^$1 \+yes" "$W/check"; }
if [ "$(id -u)" != 0 ] || ! has userns || ! has mountns || ! has pidns; then
  skip "all" "needs root with user, mount and pid namespaces: $(tr '\n' ' ' <"$W/check")"
  exit 0
fi

mkdir -p "$W/a/out" "$W/a/in" "$W/b/out"
echo "input-data" >"$W/a/in/data.txt"
chmod -R a+rX "$W/a/in"

# -- basics --------------------------------------------------------------
sb -- /bin/true
check "true exits 0 and reports layers" eval 'is exited && [ "$(num exit_code)" = 0 ] &&
  grep -q "\"layers\":\[\"userns\",\"mountns\",\"pidns\"" "$W/status"'
sb -- /bin/sh -c 'exit 7'
check "exit code is reported" eval 'is exited && [ "$(num exit_code)" = 7 ]'
sb --env FOO=bar -- /usr/bin/env
check "environment is empty but PATH, HOME and --env" eval 'is exited &&
  [ "$(sort "$W/out" | cut -d= -f1 | tr "\n" " ")" = "FOO HOME PATH " ] && out_has "^FOO=bar$"'
sb -- /bin/sh -c 'kill -SEGV $$'
check "a signal is reported" eval 'is signaled && [ "$(num signal)" = 11 ]'
sb -- /bin/sh -c 'read x; echo "[$x]"; id -u; cat /proc/self/status'
check "unprivileged uid, no caps, no_new_privs, seccomp, stdin /dev/null" eval 'is exited &&
  out_has "^\[\]$" && out_has "^1000$" && out_has "^CapEff:.0000000000000000" &&
  out_has "^CapBnd:.0000000000000000" && out_has "^NoNewPrivs:.1" && out_has "^Seccomp:.2"'

# -- filesystem ------------------------------------------------------------
sb --bind-ro "$W/a/in:/inputs" --bind-rw "$W/a/out:/outputs" -- /bin/bash -c '
  fails=0
  for f in /etc/x /usr/x /x /inputs/x /bin/x /proc/sys/kernel/hostname; do
    if (echo pwned >"$f") 2>/dev/null; then echo "WROTE $f"; fails=1; fi
  done
  cat /inputs/data.txt && echo result >/outputs/ok && echo tmp >/tmp/t && [ "$PWD" = /outputs ] || fails=1
  exit $fails'
check "writes outside outputs fail, outputs and /tmp work" eval 'is exited &&
  [ "$(num exit_code)" = 0 ] && out_has "^input-data$" && [ -f "$W/a/out/ok" ] &&
  [ ! -e /etc/x ] && [ ! -e "$W/a/in/x" ]'
rm -f /etc/x /x 2>/dev/null

echo "TOKEN-$$" >"$W/a/out/secret"
timeout -k 5 60 "$BIN" sandbox --cgroup-name "$TAG-a" --bind-rw "$W/a/out:/outputs" \
  -- /bin/sleep 5 3>"$W/status-a" >/dev/null 2>&1 &
PIDS_TO_KILL+=($!)
sleep 0.5
N=$((N + 1))
timeout -k 5 60 "$BIN" sandbox --cgroup-name "$TAG-$N" --bind-rw "$W/b/out:/outputs" -- /bin/bash -c "
  seen=0
  for p in '$W/a/out/secret' /outputs/secret /proc/*/root/outputs/secret /proc/*/cwd/secret; do
    if cat \"\$p\" 2>/dev/null; then echo \"SAW \$p\"; seen=1; fi
  done
  grep -rqs 'TOKEN-$$' /outputs /tmp /proc/[0-9]*/root/outputs 2>/dev/null && seen=1
  exit \$seen" 3>"$W/status2" >"$W/out2" 2>&1
cp "$W/status2" "$W/status"; cp "$W/out2" "$W/out"; echo 0 >"$W/rc"
check "a task cannot see another task's files" eval 'is exited && [ "$(num exit_code)" = 0 ]'
wait
PIDS_TO_KILL=()

# -- processes -------------------------------------------------------------
sleep 3017 &
HOST_SLEEP=$!
PIDS_TO_KILL+=($HOST_SLEEP)
sb -- /bin/bash -c 'ps -e -o pid=,args=; ls -d /proc/[0-9]* | wc -l'
check "host processes are invisible" eval 'is exited && ! out_has "sleep 3017" &&
  ! out_has "jobrt sandbox" && [ "$(grep -c "^ *[0-9]\+ " "$W/out")" -le 4 ] &&
  grep -q "^ *1 " "$W/out"'
kill "$HOST_SLEEP" 2>/dev/null

# -- network ---------------------------------------------------------------
PORT=$((20000 + $$ % 20000))
perl -MIO::Socket::INET -e '
  my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
                                Listen => 5, ReuseAddr => 1) or die "listen: $!";
  alarm 60; while (my $c = $s->accept) { print $c "hello\n"; close $c }' "$PORT" &
PIDS_TO_KILL+=($!)
for _ in $(seq 50); do (exec 5<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
CONNECT="exec 5<>/dev/tcp/127.0.0.1/$PORT && head -1 <&5"
sb --network none -- /bin/bash -c "$CONNECT"
check "network none cannot reach a host loopback service" eval 'is exited &&
  [ "$(num exit_code)" != 0 ] && ! out_has "^hello$"'
sb --network full -- /bin/bash -c "$CONNECT"
check "network full reaches it (control)" eval 'is exited && [ "$(num exit_code)" = 0 ] && out_has "^hello$"'
sb --network allow -- /bin/bash -c "$CONNECT"
check "network allow without domains reaches nothing directly" eval 'is exited &&
  [ "$(num exit_code)" != 0 ] && grep -q "\"netns\"" "$W/status"'
sb --network none -- /bin/bash -c 'exec 5<>/dev/tcp/127.0.0.1/9 2>&1; echo "lo:$?"; grep -c : /proc/net/dev'
check "network none has loopback only" eval 'is exited && out_has "refused" && out_has "^1$"'

# -- limits ----------------------------------------------------------------
if has pids_limit; then
  sb --pids 32 --timeout 30 -- /bin/bash -c 'f() { f | f & }; f; sleep 60'
  check "fork bomb hits the pids limit" eval 'is pids_limit && [ "$(num wall_ms)" -lt 20000 ]'
else
  skip "fork bomb hits the pids limit" "no pids cgroup controller"
fi
if has memory_limit; then
  sb --memory 64M --timeout 30 -- /usr/bin/perl -e '$x = "a" x (512 * 1024 * 1024); print "survived\n"'
  check "memory hog is reported as oom" eval 'is oom && ! out_has survived &&
    [ "$(num max_rss_bytes)" -ge 60000000 ]'
else
  skip "memory hog is reported as oom" "no memory cgroup controller"
fi
if has cpu_limit; then
  sb --cpu 250 --timeout 2 --grace 0 -- /bin/bash -c 'while :; do :; done'
  check "cpu quota caps cpu time" eval 'is timeout && [ "$(num cpu_ms)" -lt 1000 ]'
else
  skip "cpu quota caps cpu time" "no cpu cgroup controller"
fi

MARK=$((40000 + $$ % 10000))
sb --timeout 1 --grace 1 -- /bin/bash -c "sleep $MARK & (trap '' TERM; exec sleep $((MARK + 1))) & while :; do :; done"
sleep 0.2
check "timeout kills the whole tree" eval 'is timeout && [ "$(num wall_ms)" -ge 1000 ] &&
  [ "$(num wall_ms)" -lt 5000 ] && ! pgrep -f "sleep $MARK" >/dev/null &&
  ! pgrep -f "sleep $((MARK + 1))" >/dev/null'

N=$((N + 1))
"$BIN" sandbox --cgroup-name "$TAG-$N" --grace 1 -- /bin/bash -c "sleep $((MARK + 2)) & sleep 60" 3>"$W/status" >"$W/out" 2>&1 &
HELPER=$!
sleep 0.5
kill -TERM "$HELPER"
wait "$HELPER"
echo $? >"$W/rc"
check "SIGTERM to the helper cancels" eval 'is canceled && [ "$(num wall_ms)" -lt 3000 ] &&
  ! pgrep -f "sleep $((MARK + 2))" >/dev/null'

# The outcome line comes before the namespaces' teardown, but only once the
# task's background processes are dead: read at once, nothing of the task
# runs and its outputs no longer change.
N=$((N + 1))
mkdir -p "$W/bg"
rm -f "$W/bg-alive"
( "$BIN" sandbox --cgroup-name "$TAG-$N" --bind-rw="$W/bg:/outputs" -- /bin/bash -c \
    "S=$((MARK + 3)); (trap '' TERM HUP; exec sleep \$S) & (while :; do echo x >>/outputs/spin; done) &
     sleep 0.3; exit 0" 3>&1 >"$W/out" 2>&1; echo $? >"$W/rc" ) | {
  IFS= read -r line
  pgrep -f "sleep $((MARK + 3))" >/dev/null && touch "$W/bg-alive"
  printf '%s\n' "$line" >"$W/status"
  stat -c %s "$W/bg/spin" >"$W/size1"
  sleep 0.3
  stat -c %s "$W/bg/spin" >"$W/size2"
  cat >/dev/null
}
check "background processes are dead when the outcome arrives" eval 'is exited &&
  [ ! -e "$W/bg-alive" ] && [ "$(cat "$W/size1")" -gt 0 ] &&
  [ "$(cat "$W/size1")" = "$(cat "$W/size2")" ]'

# -- privileges ------------------------------------------------------------
sb -- /usr/bin/perl -e '
  my ($src, $dst, $fs, $root) = ("none", "/tmp", "tmpfs", "/");
  syscall(165, $src, $dst, $fs, 0, 0) == -1 and print "mount:", 0 + $!, "\n";
  syscall(272, 0x10000000) == -1 and print "unshare:", 0 + $!, "\n";
  syscall(272, 0x00020000) == -1 and print "unshare-ns:", 0 + $!, "\n";
  syscall(155, $root, $root) == -1 and print "pivot:", 0 + $!, "\n";'
if [ "$(uname -m)" = x86_64 ]; then
  check "mount and unshare inside fail with EPERM" eval 'is exited &&
    out_has "^mount:1$" && out_has "^unshare:1$" && out_has "^unshare-ns:1$" && out_has "^pivot:1$"'
else
  skip "mount and unshare inside fail with EPERM" "syscall numbers in this test are x86_64's"
fi
sb -- /bin/bash -c 'unshare -U -r true; echo "rc:$?"'
check "unshare(1) is refused" eval 'is exited && out_has "^rc:1$"'
sb -- /usr/bin/perl -e 'syscall(169, 0xfee1dead, 672274793, 0x1234567, 0); print "alive\n"'
check "a host-attack syscall is a seccomp outcome" eval 'is seccomp && [ "$(num signal)" = 31 ] && ! out_has alive'

cp /usr/bin/id "$W/a/in/suid-id"
chown root:root "$W/a/in/suid-id"
chmod 4755 "$W/a/in/suid-id"
sb --bind-ro "$W/a/in:/inputs" -- /bin/bash -c '/inputs/suid-id -u; /inputs/suid-id -g; su -c id root </dev/null; echo "su:$?"'
check "setuid binaries gain nothing" eval 'is exited && [ "$(sed -n 1p "$W/out")" = 1000 ] &&
  [ "$(sed -n 2p "$W/out")" = 1000 ] && ! out_has "uid=0" && out_has "^su:[1-9]"'

# -- setup errors ----------------------------------------------------------
sb -- /nonexistent/entrypoint
check "a missing entrypoint is a setup error at stage exec" eval 'is setup_error &&
  [ "$(str stage)" = exec ] && [ "$(num errno)" = 2 ]'
sb -- no-such-program-anywhere
check "a missing program on PATH is a setup error" eval 'is setup_error && [ "$(str stage)" = exec ]'
sb --bind-ro "$W/missing:/inputs" -- /bin/true
check "a missing bind source is a setup error at stage bind_ro" eval 'is setup_error &&
  [ "$(str stage)" = bind_ro ] && [ "$(num errno)" = 2 ]'
sb --workdir /nowhere/deep --image "$W/a/in" -- /bin/true
check "an image without the program is a setup error" eval 'is setup_error'
sb --memory banana -- /bin/true
check "bad options are a setup error at stage options" eval 'is setup_error && [ "$(str stage)" = options ]'

# -- leftovers -------------------------------------------------------------
left=$(find /sys/fs/cgroup -maxdepth 3 -path "*/jobrt/$TAG-*" 2>/dev/null | head -5)
check "no cgroup is left behind" test -z "$left"
