#!/usr/bin/env bash
# Stops the cluster tools/slurm/up.sh started in DIR: slurmd, slurmctld and
# munged, each by the pid up.sh kept, and waits (bounded) until they are
# gone. With --rm, removes DIR afterwards.
#
#   tools/slurm/down.sh DIR [--rm]
set -u
SL=${1:?usage: down.sh DIR [--rm]}
[ -d "$SL" ] || exit 0
for d in slurmd slurmctld munged; do
  f="$SL/$d.bgpid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  # Only the process up.sh started, and only while it is that daemon.
  if [ -n "$pid" ] && grep -qs "$d" "/proc/$pid/cmdline"; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do
      grep -qs "$d" "/proc/$pid/cmdline" || break
      # A zombie is gone as far as we are concerned.
      [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
      sleep 0.05
    done
    if grep -qs "$d" "/proc/$pid/cmdline" &&
       [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$f"
done
if [ "${2:-}" = --rm ]; then
  rm -rf "$SL"
fi
exit 0
