#!/usr/bin/env bash
# Installs Debian's SLURM (slurm-wlm) and munge and runs a one-node cluster on this
# machine: node "localhost" with all its CPUs and its memory less
# 1 GiB, partitions "debug" (the default) and "other" on it, no accounting. The daemons run
# in the background (there is no systemd); state, spool, logs and pid files are kept in
# $SLURM_SETUP_DIR. Finished jobs stay visible to `scontrol show job` for 5 minutes
# (MinJobAge=300): with accounting off that is the only record of how a job ended.
# Idempotent and fast once done: slurm.conf is rewritten (and the daemons restarted) only
# when its content changes; running daemons are left alone. Ends with a smoke-test job.
# Needs root (apt, daemons running as root).
set -euo pipefail

START_NS="$(date +%s%N)"
DIR="${SLURM_SETUP_DIR:-/var/lib/cwl-crunch-slurm}"
CONF=/etc/slurm/slurm.conf
NODE=localhost

log() { echo "== slurm-setup: $*" >&2; }

elapsed() { awk -v s="$START_NS" -v e="$(date +%s%N)" 'BEGIN { printf "%.1f", (e - s) / 1e9 }'; }

logs_tail() {
  local f
  for f in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] || continue
    echo "--- tail $f" >&2
    tail -n 25 "$f" >&2
  done
}

fail() {
  echo "slurm-setup: $*" >&2
  logs_tail
  exit 1
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null; then
    return
  fi
  log "installing slurm-wlm, munge"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -qq -o DPkg::Lock::Timeout=120)
  local install=("${apt[@]}" install -y --no-install-recommends slurm-wlm munge)
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || ! "${install[@]}" >/dev/null 2>&1; then
    "${apt[@]}" update >/dev/null
    "${install[@]}" >/dev/null
  fi
}

start_munge() {
  local key=/etc/munge/munge.key
  if [ ! -s "$key" ]; then
    log "creating the munge key"
    mkdir -p /etc/munge
    if ! mungekey -c -k "$key" 2>/dev/null; then
      dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
    fi
  fi
  local user=root
  if id munge >/dev/null 2>&1; then
    user=munge
  fi
  chown "$user:" "$key" /etc/munge
  chmod 700 /etc/munge
  chmod 400 "$key"
  if pgrep -x munged >/dev/null && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  log "starting munged"
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown "$user:" /run/munge /var/lib/munge /var/log/munge
  chmod 755 /run/munge
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  if [ "$user" = munge ]; then
    runuser -u munge -- munged
  else
    munged --force
  fi
  for _ in $(seq 1 50); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  fail "munged did not come up; see /var/log/munge/munged.log"
}

write_conf() {
  # Prints 1 when slurm.conf changed.
  local cpus mem_mib
  cpus="$(nproc)"
  mem_mib="$(awk '/^MemTotal:/ {print int($2 / 1024) - 1024}' /proc/meminfo)"
  local new
  new="$(cat <<CONF
# Written by cwl-crunch scripts/slurm-setup.sh: a one-node cluster for tests.
ClusterName=crunch
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# Batch jobs start at the controller's next 1-second tick (default: up to 3 s later).
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
MailProg=/bin/true
# Refuse at once (sbatch fails) a job that can never fit, e.g. more CPUs than the node has,
# instead of leaving it PENDING (Reason=PartitionConfig) for ever.
EnforcePartLimits=ALL
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# Without a default, a job that does not ask for memory gets all of the node's (one at a time).
DefMemPerCPU=$((mem_mib / cpus))
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES State=UP MaxTime=INFINITE
PartitionName=other Nodes=$NODE Default=NO State=UP MaxTime=INFINITE
CONF
)"
  if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then
    echo 0
    return
  fi
  log "writing $CONF"
  mkdir -p /etc/slurm
  printf '%s\n' "$new" >"$CONF.part"
  mv "$CONF.part" "$CONF"
  echo 1
}

stop_daemon() {
  local name="$1" pid
  pid="$(cat "$DIR/$name.pid" 2>/dev/null || true)"
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    pid="$(pgrep -x "$name" || true)"
  fi
  [ -n "$pid" ] || return 0
  log "stopping $name"
  kill $pid 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 $pid 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 $pid 2>/dev/null || true
}

start_daemon() {
  local name="$1"
  shift
  pgrep -x "$name" >/dev/null && return
  log "starting $name"
  "$name" "$@" || fail "$name did not start"
}

start_daemons() {
  start_daemon slurmctld
  start_daemon slurmd -N "$NODE"
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1; }

wait_for_node() {
  local state=""
  for _ in $(seq 1 150); do
    start_daemons  # again, should one have just exited
    state="$(node_state)"
    case "$state" in
      idle|mixed|allocated|completing|planned) return ;;
      down|drained|draining|drain)
        scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  fail "node $NODE is not up after 30 s (state: ${state:-unknown})"
}

smoke_test() {
  local out="/tmp/cwl-crunch-slurm-smoke.$$.out" id state=""
  id="$(sbatch --parsable --chdir=/tmp -J cwl-crunch-smoke -c 1 --mem=16M -o "$out" --wrap 'echo hi')" \
    || fail "sbatch failed"
  id="${id%%;*}"
  for _ in $(seq 1 300); do
    state="$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)"
    case "$state" in
      COMPLETED) break ;;
      FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)
        scontrol show job "$id" >&2 || true
        fail "smoke-test job $id ended $state" ;;
    esac
    sleep 0.1
  done
  [ "$state" = COMPLETED ] || { scontrol show job "$id" >&2 || true; fail "smoke-test job $id not done after 30 s (state: ${state:-unknown})"; }
  [ "$(cat "$out" 2>/dev/null)" = hi ] || fail "smoke-test job $id wrote '$(cat "$out" 2>/dev/null)', not 'hi'"
  rm -f "$out"
}

if [ "$(id -u)" -ne 0 ]; then
  echo "slurm-setup.sh: run as root" >&2
  exit 1
fi
install_packages
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
start_munge
if [ "$(write_conf)" = 1 ]; then
  stop_daemon slurmd
  stop_daemon slurmctld
fi
start_daemons
wait_for_node
smoke_test
log "ready: one-node cluster (partitions debug, other) in $(elapsed) s"
