# A private one-node Slurm cluster on localhost for the array-job tests.
# Sourced, not run:
#
#   source tests/slurm/cluster.sh
#   slurm_cluster_start             # exports SLURM_CONF and SLURM_CLUSTER_DIR
#   sbatch --array=0-3 ...          # every client talks to this cluster only
#                                   # (slurm_cluster_stop runs on exit)
#
# Everything lives in a fresh temp folder: its own munge key, socket, seed,
# pid and log files; slurm.conf with a state dir, spool dir, pid and log files
# there and two free ports outside both Slurm's defaults (6817/6818) and the
# kernel's ephemeral range, so a machine's own Slurm or munge is never
# touched. The configuration needs no systemd, cgroups or accounting
# (proctrack/linuxproc, task/none, jobacct_gather/none): it runs in a minimal
# Debian 12 chroot as well as on a CI runner. The node is "localhost" with the
# CPUs, layout and memory `slurmd -C` finds.
#
# Daemons run in the foreground as children of the test (so a CTest timeout,
# which kills the test's process tree, takes them along too) and carry
# DSVL2_SLURM_CLUSTER=<folder> in their environment. slurm_cluster_stop
# cancels the jobs, stops the daemons, then SIGKILLs every process that still
# carries the mark or holds a file of the folder open, with its descendants:
# slurmstepd (the parent of a job's processes) leaves the daemons' tree and
# gets a clean environment, but keeps slurmd's log open. It is installed as
# the EXIT trap, so it runs on success, failure and INT/TERM/HUP alike. A
# start also stops what an earlier test left when its shell died without
# its trap (SIGKILL): clusters whose owner process is gone.
#
# A daemon that cannot start (binaries missing, no permission, no munge)
# makes the test exit 77, which CTest reports as skipped (SKIP_RETURN_CODE),
# after printing why; DSVL2_SLURM_REQUIRED=1 makes that a failure instead.
# Daemons that start but never bring the node up are a failure. On a failure
# the daemons' log tails are printed; DSVL2_SLURM_KEEP=1 keeps the folder.

SLURM_SKIP_CODE=77
SLURM_CLUSTER_DIR=""
_slurm_pids=()  # munged, slurmctld, slurmd

_slurm_say() { echo "slurm-cluster: $*" >&2; }

_slurm_skip() {
  if [ "${DSVL2_SLURM_REQUIRED:-0}" = 1 ]; then
    _slurm_say "FAILED (DSVL2_SLURM_REQUIRED=1): $*"
    exit 1
  fi
  _slurm_say "skipped: $*"
  exit "$SLURM_SKIP_CODE"
}

# The last lines of a log file, indented, for a reason or a failure.
_slurm_tail() {
  [ -s "$1" ] || return 0
  echo "---- last lines of $1" >&2
  tail -n "${2:-25}" "$1" | sed 's/^/    /' >&2
}

# Is TCP port $1 in use (listening or connected, IPv4 or IPv6)? Reads /proc,
# so neither ss nor netstat is needed.
_slurm_port_used() {
  local hex
  hex=$(printf ':%04X ' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q "$hex"
}

# Two consecutive free ports in 10000-31999 (below the ephemeral range).
_slurm_free_ports() {
  local p tries=0
  while [ $tries -lt 200 ]; do
    p=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
    if ! _slurm_port_used "$p" && ! _slurm_port_used $((p + 1)); then
      echo "$p"
      return 0
    fi
    tries=$((tries + 1))
  done
  return 1
}

# Where cluster folders go: TMPDIR, unless its path would make the munge
# socket's longer than a Unix socket name may be (108 bytes).
_slurm_base() {
  local t=${TMPDIR:-/tmp}
  [ ${#t} -le 60 ] || t=/tmp
  echo "$t"
}

# "PID FOLDER" for every process of a test cluster: a daemon started with
# DSVL2_SLURM_CLUSTER=FOLDER in its environment, or a process holding a file
# of FOLDER open (slurmstepd, which slurmd starts with a clean environment,
# keeps slurmd's log open). Reads /proc only (no procps in a bare chroot).
_slurm_members() {
  local e kv base fd target
  base=$(_slurm_base)
  for e in /proc/[0-9]*/environ; do
    while IFS= read -r -d '' kv; do
      case "$kv" in DSVL2_SLURM_CLUSTER=*) e=${e#/proc/}; echo "${e%/environ} ${kv#*=}"; break ;; esac
    done 2>/dev/null <"$e" || true
  done
  find /proc/[0-9]*/fd -maxdepth 1 -lname "$base/dsvl2-slurm.*/*" -printf '%h %l\n' 2>/dev/null |
    while read -r fd target; do
      fd=${fd#/proc/}
      target=${target#"$base"/}
      echo "${fd%/fd} $base/${target%%/*}"
    done || true  # find fails on processes that exit while it reads
}

# The given PIDs and all their descendants (from /proc/*/stat parent links).
_slurm_with_descendants() {
  local all=" $* " added=1 s line pid rest i
  local -a pids=() ppids=()
  for s in /proc/[0-9]*/stat; do
    IFS= read -r line 2>/dev/null <"$s" || continue
    rest=${line##*) }  # past the command name, which may hold spaces
    rest=${rest#* }
    pids+=("${line%% *}")
    ppids+=("${rest%% *}")
  done
  while [ $added = 1 ]; do
    added=0
    for i in "${!pids[@]}"; do
      case "$all" in *" ${ppids[i]} "*) case "$all" in *" ${pids[i]} "*) ;; *) all="$all${pids[i]} " added=1 ;; esac ;; esac
    done
  done
  # shellcheck disable=SC2086  # one line of PIDs
  echo $all
}

# Is PID $1 still running (a zombie waiting for its parent counts as gone)?
_slurm_running() {
  local st
  { IFS= read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}

# SIGKILLs cluster $1's processes and their descendants; waits up to 5 s for
# them to be gone.
_slurm_kill_members() {
  local pids p i
  pids=$(_slurm_members | while read -r p i; do [ "$i" = "$1" ] && [ "$p" != $$ ] && echo "$p"; done)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  pids=$(_slurm_with_descendants $pids)
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for i in $(seq 25); do
    for p in $pids; do _slurm_running "$p" && break; p=""; done
    [ -z "$p" ] && return 0
    sleep 0.2
  done
  _slurm_say "warning: process $p of $1 survived SIGKILL"
}

# Leftovers of earlier tests whose shell was killed before its trap ran (a
# CTest timeout): a cluster whose owner is gone, or whose folder is.
_slurm_sweep_orphans() {
  local pid dir owner
  _slurm_members | while read -r pid dir; do echo "$dir"; done | sort -u | while read -r dir; do
    owner=$(cat "$dir/owner" 2>/dev/null || true)
    if [ -z "$owner" ] || ! kill -0 "$owner" 2>/dev/null; then
      _slurm_say "stopping what an earlier test cluster left running ($dir)"
      _slurm_kill_members "$dir"
      rm -rf "$dir"
    fi
  done || true
}

# Waits up to $2 seconds for command $1 to succeed while daemon PID $3 lives.
# Returns 0 when it succeeded, 1 on timeout, 2 when the daemon exited.
_slurm_wait_for() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    eval "$1" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || return 2
    sleep 0.2
  done
  eval "$1" >/dev/null 2>&1 && return 0
  return 1
}

slurm_cluster_start() {
  local b
  for b in munged munge unmunge slurmctld slurmd sinfo sbatch squeue scancel scontrol; do
    command -v "$b" >/dev/null 2>&1 ||
      _slurm_skip "$b not found (Debian: apt-get install slurm-wlm munge, as scripts/setup does)"
  done
  # Only this cluster's settings: no inherited job, client or config variables.
  local v
  for v in $(compgen -e | grep -E '^(SLURM_|SBATCH_|SALLOC_|SRUN_|SQUEUE_|SINFO_|SCONTROL_|SCANCEL_)' || true); do
    unset "$v"
  done

  trap 'slurm_cluster_stop' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  _slurm_sweep_orphans

  local d user uid node ports
  d=$(mktemp -d "$(_slurm_base)/dsvl2-slurm.XXXXXX") || _slurm_skip "cannot make a temp folder"
  SLURM_CLUSTER_DIR=$d
  echo $$ >"$d/owner"
  mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log" "$d/run"
  # munged wants its socket's folders searchable by all (the key stays 0400).
  chmod 755 "$d" "$d/munge"
  user=$(id -un)
  uid=$(id -u)

  # munge: a private key, socket, seed, pid and log.
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$d/munge/munge.key"
  local sock="$d/munge/munge.sock"
  DSVL2_SLURM_CLUSTER=$d munged --foreground --socket="$sock" --key-file="$d/munge/munge.key" \
    --pid-file="$d/run/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/munge/munged.seed" \
    >>"$d/log/munged.out" 2>&1 &
  _slurm_pids+=($!)
  local mpid=$!
  case $(_slurm_wait_for "munge --socket='$sock' -n | unmunge --socket='$sock'" 20 $mpid; echo $?) in
    0) ;;
    2) _slurm_tail "$d/log/munged.out"; _slurm_tail "$d/log/munged.log"; _slurm_skip "munged could not start (see above)" ;;
    *) _slurm_tail "$d/log/munged.log"; _slurm_skip "munged started but never answered on $sock" ;;
  esac

  # The node as slurmd sees it: "NodeName=host CPUs=.. Boards=.. ... RealMemory=..".
  node=$(slurmd -C 2>/dev/null | head -n1)
  case "$node" in
    NodeName=*CPUs=*RealMemory=*) node=${node#NodeName=* } ;;
    *) _slurm_skip "slurmd -C cannot describe this machine: $(slurmd -C 2>&1 | head -n3)" ;;
  esac
  ports=$(_slurm_free_ports) || _slurm_skip "no two free TCP ports found in 10000-31999"

  echo "include /dev/null" >"$d/plugstack.conf"
  cat >"$d/slurm.conf" <<EOF
# A private one-node test cluster (tests/slurm/cluster.sh); removed on exit.
ClusterName=dsvl2test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ports
SlurmdPort=$((ports + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$d/plugstack.conf
# No cgroups, no systemd, no accounting: works in a bare chroot.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# CPUs are the consumable (not whole cores, not memory): a task asks for
# --cpus-per-task and several run side by side when the node has room.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MailProg=/bin/true
# Quick turnaround: a test waits on these.
KillWait=2
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=20
NodeName=localhost NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  # slurmd 22.05 always loads a cgroup plugin, even with the plugins above;
  # "autodetect" needs a cgroup file system at /sys/fs/cgroup. Where there is
  # none (a minimal chroot, a container), the v1 plugin loads without one and
  # is never used by linuxproc/task-none.
  if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] &&
    [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != tmpfs ]; then
    echo "CgroupPlugin=cgroup/v1" >"$d/cgroup.conf"
  fi
  export SLURM_CONF="$d/slurm.conf"
  export SLURM_CLUSTER_DIR

  DSVL2_SLURM_CLUSTER=$d slurmctld -D -c -f "$SLURM_CONF" >>"$d/log/slurmctld.out" 2>&1 &
  _slurm_pids+=($!)
  case $(_slurm_wait_for "scontrol ping | grep -q 'is UP'" 30 $!; echo $?) in
    0) ;;
    2) _slurm_tail "$d/log/slurmctld.out"; _slurm_tail "$d/log/slurmctld.log"
       _slurm_skip "slurmctld could not start as $user (uid $uid; see above)" ;;
    *) _slurm_tail "$d/log/slurmctld.log"; _slurm_say "slurmctld runs but does not answer scontrol ping"; exit 1 ;;
  esac

  DSVL2_SLURM_CLUSTER=$d slurmd -D -N localhost -f "$SLURM_CONF" >>"$d/log/slurmd.out" 2>&1 &
  _slurm_pids+=($!)
  case $(_slurm_wait_for "[ \"\$(sinfo -h -n localhost -o %t)\" = idle ]" 60 $!; echo $?) in
    0) ;;
    2) _slurm_tail "$d/log/slurmd.out"; _slurm_tail "$d/log/slurmd.log"
       _slurm_skip "slurmd could not start as $user (uid $uid; see above)" ;;
    *) _slurm_tail "$d/log/slurmd.log"; _slurm_tail "$d/log/slurmctld.log"
       _slurm_say "the node never became idle: $(sinfo -h -N -o '%N %t %E' 2>&1)"; exit 1 ;;
  esac
  _slurm_say "up: $SLURM_CONF (ports $ports-$((ports + 1)), node localhost: $node)"
}

slurm_cluster_stop() {
  local status=$? d=$SLURM_CLUSTER_DIR p i pid
  trap - EXIT HUP INT TERM
  [ -n "$d" ] || return "$status"
  SLURM_CLUSTER_DIR=""
  if [ "$status" != 0 ] && [ "$status" != "$SLURM_SKIP_CODE" ]; then
    _slurm_say "the test failed (status $status); the cluster's logs:"
    _slurm_tail "$d/log/slurmctld.log" 40
    _slurm_tail "$d/log/slurmd.log" 40
  fi
  # Jobs first, while the controller can still cancel them.
  if [ ${#_slurm_pids[@]} -ge 2 ] && kill -0 "${_slurm_pids[1]}" 2>/dev/null; then
    scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for i in $(seq 50); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  # slurmd, slurmctld, munged: TERM, then KILL whatever is still there.
  for ((i = ${#_slurm_pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${_slurm_pids[i]}" 2>/dev/null || true
  done
  for i in $(seq 50); do
    p=0
    for pid in "${_slurm_pids[@]}"; do kill -0 "$pid" 2>/dev/null && p=1; done
    [ $p = 0 ] && break
    sleep 0.2
  done
  _slurm_kill_members "$d"
  for pid in "${_slurm_pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  _slurm_pids=()
  if [ "${DSVL2_SLURM_KEEP:-0}" = 1 ]; then
    _slurm_say "kept $d"
  else
    rm -rf "$d"
  fi
  return "$status"
}

# ---- Helpers for the tests ------------------------------------------------

# Waits up to $2 seconds until every task of job $1 has left the queue.
slurm_wait_job() {
  local deadline=$((SECONDS + $2))
  while [ -n "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; do
    if [ $SECONDS -ge $deadline ]; then
      _slurm_say "job $1 still queued or running after $2 s:"
      squeue -j "$1" >&2 || true
      return 1
    fi
    sleep 0.25
  done
}

# "TASK STATE EXIT" for each array task of job $1 (EXIT is code:signal), in
# task order, from the controller's record (kept MinJobAge seconds).
slurm_task_states() {
  scontrol -o show job "$1" | sed -n 's/.*ArrayTaskId=\([0-9]*\) .*JobState=\([A-Z_]*\) .*ExitCode=\([0-9:]*\).*/\1 \2 \3/p' |
    sort -n
}

# Waits for array job $1 ($2 tasks, at most $4 seconds) and checks that task
# $3 FAILED (it was killed) and every other task COMPLETED; prints the states
# and, for a task in the wrong state, its log (logs/$5-JOB_TASK.log). Returns
# non-zero with the reason on stderr.
slurm_expect_one_failed_task() {
  local jid=$1 tasks=$2 victim=$3 seconds=$4 log=$5 states t want
  slurm_wait_job "$jid" "$seconds" || { echo "the array job did not finish" >&2; return 1; }
  states=$(slurm_task_states "$jid")
  echo "$states" | sed 's/^/    task /' >&2
  for ((t = 0; t < tasks; t++)); do
    want=COMPLETED
    [ "$t" = "$victim" ] && want=FAILED
    echo "$states" | grep -q "^$t $want " || {
      cat "logs/$log-${jid}_$t.log" >&2 2>/dev/null || true
      echo "task $t is not $want: $(echo "$states" | grep "^$t " || echo missing)" >&2
      return 1
    }
  done
}

# PIDs of the processes of array task $2 of job $1 running executable $3
# (found by the Slurm variables in their environment).
slurm_task_pids() {
  local e kv job task pid exe
  exe=$(readlink -f "$3")
  for e in /proc/[0-9]*/environ; do
    job="" task=""
    while IFS= read -r -d '' kv; do
      case "$kv" in
        SLURM_ARRAY_JOB_ID=*) job=${kv#*=} ;;
        SLURM_ARRAY_TASK_ID=*) task=${kv#*=} ;;
      esac
    done 2>/dev/null <"$e" || true
    [ "$job" = "$1" ] && [ "$task" = "$2" ] || continue
    pid=${e#/proc/}
    pid=${pid%/environ}
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid"
  done
  return 0
}
