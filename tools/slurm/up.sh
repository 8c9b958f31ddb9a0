#!/usr/bin/env bash
# Starts a throwaway Slurm cluster of one node in DIR (made if missing):
# a private munged (its own key and socket), slurmctld and slurmd in the
# foreground of background jobs, on free loopback ports, state and logs in
# DIR, config in DIR/slurm.conf (every Slurm command reads it through
# SLURM_CONF). No systemd, nothing in /etc. tools/slurm/down.sh DIR stops it.
#
#   tools/slurm/up.sh DIR [CPUS]    CPUS: the node's CPUs (default: this machine's)
#
# Prints "SLURM_CONF=DIR/slurm.conf" once sinfo shows the node idle. Needs
# root (slurmd runs jobs as their users) and the Debian packages slurm-wlm
# and munge (`make slurm-deps`).
set -eu
SL=${1:?usage: up.sh DIR [CPUS]}
CPUS=${2:-$(nproc)}
mkdir -p "$SL"
SL=$(cd "$SL" && pwd)
# munged wants its socket's folder reachable but not writable by others.
chmod 755 "$SL"
mkdir -p "$SL/state" "$SL/spool"

for b in munged slurmctld slurmd sbatch sinfo scontrol; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
    { echo "up.sh: $b not found: install slurm-wlm and munge (make slurm-deps)" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- munge: a key and a socket of this cluster's own ----
[ -f "$SL/munge.key" ] || {
  dd if=/dev/urandom bs=128 count=1 of="$SL/munge.key" 2>/dev/null
  chmod 400 "$SL/munge.key"
}
/usr/sbin/munged -F --force --socket="$SL/munge.sock" --key-file="$SL/munge.key" \
  --pid-file="$SL/munged.pid" --log-file="$SL/munged.log" --seed-file="$SL/munged.seed" \
  >>"$SL/munged.stderr" 2>&1 &
echo $! >"$SL/munged.bgpid"
for _ in $(seq 100); do [ -S "$SL/munge.sock" ] && break; sleep 0.02; done
munge -S "$SL/munge.sock" -n | unmunge -S "$SL/munge.sock" >/dev/null ||
  { echo "up.sh: munged did not answer; see $SL/munged.stderr" >&2; exit 1; }

# ---- slurm.conf ----
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
MEM=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
cat >"$SL/slurm.conf" <<EOF
ClusterName=jobrt-test
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$SL/munge.sock
CredType=cred/munge
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$SL/slurmctld.log
SlurmdLogFile=$SL/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
KillWait=5
MinJobAge=300
JobCompType=jobcomp/filetxt
JobCompLoc=$SL/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$SL/slurm.conf"

# ---- the daemons, each the pid we stop ----
/usr/sbin/slurmctld -D -f "$SLURM_CONF" >>"$SL/slurmctld.stderr" 2>&1 &
echo $! >"$SL/slurmctld.bgpid"
/usr/sbin/slurmd -D -N localhost -f "$SLURM_CONF" >>"$SL/slurmd.stderr" 2>&1 &
echo $! >"$SL/slurmd.bgpid"
for _ in $(seq 300); do
  if [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.05
done
echo "up.sh: the node did not become idle within 15 s; logs in $SL" >&2
tail -n 20 "$SL/slurmctld.log" "$SL/slurmd.log" >&2 2>/dev/null || true
exit 1
