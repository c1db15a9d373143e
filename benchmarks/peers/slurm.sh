#!/usr/bin/env bash
# slurm.sh: measure Slurm on this machine as the peer for the bai scheduler
# benchmarks.
#
# It starts a private, single-node Slurm cluster (munged, slurmctld, slurmd)
# inside one temporary directory, runs the same workloads as our bai
# benchmark, prints human-readable lines on stderr and one JSON object on
# stdout (or --json FILE), then stops exactly the daemons it started and
# removes the directory.
#
# Workloads:
#   latency      `srun --quiet -n1 --gres=gpu:1 true`, N times one after another
#                (after one untimed warm-up): p50/p99/min in ms, wall time of
#                the srun process as seen by the caller.
#   submit       M sequential `sbatch --wrap true --gres=gpu:1`: submissions/s
#                of the submission loop alone (jobs start while it runs).
#   live         for those same M jobs: first submission -> queue empty.
#   queue        M more jobs submitted while the partition is DOWN (Slurm
#                queues them but starts none), then the partition is set UP in
#                one command; time until the queue is empty: completions/s
#                with a standing queue of M (our "queue of 500" workload).
#   "Empty" means `squeue -h` (pending, running, completing, configuring...)
#   lists nothing, i.e. Slurm itself considers every job finished.
#
# Why some settings matter:
#   Epilog=/bin/true  with an epilog, slurmd's "epilog complete" message for
#                     each finished job runs the scheduler at once; without
#                     one, freed resources are only reused on slurmctld's
#                     1-second background pass (measured here on 22.05.8:
#                     ~2 jobs/s without, ~20-35 jobs/s with; --no-epilog
#                     shows it).
#   gres.conf File=   Slurm wants one device file per GPU; nodes made with
#                     /dev/null's numbers (or empty files) in the work dir
#                     do, so no real GPU and no NVML are needed.
#   CPUs=$(nproc)     with CR_Core each job takes a core, so at most
#                     min(nproc, 8) jobs run at once; --cpus overrides.
#   sched/builtin     FIFO, event driven; sched/backfill adds a periodic
#                     backfill pass that buys nothing for 1-CPU, no-time-
#                     limit jobs (no better in our runs).
#
# Nothing is written outside the work directory and nothing in /etc changes:
# the munge key, munged socket, slurm.conf, gres.conf, state, spool, pid and
# log files all live there, and every client runs with SLURM_CONF set to it.
#
# Needs root (slurmd must run jobs as the submitting user) and the Debian
# packages slurmctld, slurmd, slurm-client and munge.
set -euo pipefail

JOBS=500
SRUN_RUNS=30
JSON_FILE=""
KEEP=0
WORKDIR=""
CTLD_PORT=""
SLURMD_PORT=""
NODE_CPUS=""
SCHEDULER="sched/builtin"
EPILOG="/bin/true"

# PIDs of the daemons this script started, in start order.
STARTED_PIDS=()
CREATED_WORKDIR=0
WD=""

log() { printf '[slurm-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat <<'EOF'
Usage: slurm.sh [options]

Measure Slurm (a private single-node cluster in a temporary directory) on the
bai benchmark workloads: srun latency, sbatch submissions/s and job
completions/s with a queue of M jobs.  Human-readable lines go to stderr,
one JSON object to stdout (or to --json FILE).

Options:
  --jobs M            jobs per batch for submit/complete workloads (500)
  --srun-runs N       timed srun runs for the latency workload (30)
  --json FILE         write the JSON object to FILE instead of stdout
  --keep              keep the work directory (logs, config) afterwards
  --workdir DIR       use DIR (created if missing, must be empty) instead of
                      a fresh mktemp -d directory
  --ctld-port P       slurmctld port on 127.0.0.1 (default: a free one)
  --slurmd-port P     slurmd port on 127.0.0.1 (default: a free one)
  --cpus N            CPUs of the node (default: nproc; CR_Core gives each job
                      a core, so this caps concurrent jobs; other values
                      set SlurmdParameters=config_overrides)
  --scheduler S       SchedulerType: sched/builtin (default) or sched/backfill
  --no-epilog         leave Epilog unset (for comparison only)
  -h, --help          show this help

Needs root and: apt-get install slurmctld slurmd slurm-client munge
EOF
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --jobs) JOBS="${2:?--jobs needs a value}"; shift 2 ;;
            --srun-runs) SRUN_RUNS="${2:?--srun-runs needs a value}"; shift 2 ;;
            # Absolute now: the measurements run from the work directory.
            --json) JSON_FILE="$(realpath -m "${2:?--json needs a file}")"; shift 2 ;;
            --keep) KEEP=1; shift ;;
            --workdir) WORKDIR="${2:?--workdir needs a directory}"; shift 2 ;;
            --ctld-port) CTLD_PORT="${2:?--ctld-port needs a value}"; shift 2 ;;
            --slurmd-port) SLURMD_PORT="${2:?--slurmd-port needs a value}"; shift 2 ;;
            --cpus) NODE_CPUS="${2:?--cpus needs a value}"; shift 2 ;;
            --scheduler) SCHEDULER="${2:?--scheduler needs a value}"; shift 2 ;;
            --no-epilog) EPILOG=""; shift ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
    done
    local v
    for v in "$JOBS" "$SRUN_RUNS"; do
        [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "--jobs and --srun-runs take positive integers"
    done
}

check_prereqs() {
    local b missing=()
    for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged \
             /usr/bin/srun /usr/bin/sbatch /usr/bin/squeue /usr/bin/sinfo \
             /usr/bin/scontrol /usr/bin/scancel; do
        [[ -x "$b" ]] || missing+=("$b")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        die "missing ${missing[*]}; install with: apt-get install slurmctld slurmd slurm-client munge"
    fi
    # slurmd launches every job as its owner through setuid; without root
    # it cannot run at all, so this is a real requirement, not caution.
    if [[ $(id -u) -ne 0 ]]; then
        log "skipped: must run as root (slurmd starts jobs as their user)"
        exit 77
    fi
}

# Timing uses bash 5's $EPOCHREALTIME with the separator removed (a
# microsecond count): no fork, so the timer costs nothing next to the
# process being timed.

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    else
        # Fall back to a random high port not listed by ss.
        local p
        while :; do
            p=$((20000 + RANDOM % 40000))
            ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
        done
    fi
}

setup_workdir() {
    if [[ -n "$WORKDIR" ]]; then
        mkdir -p "$WORKDIR"
        [[ -z "$(ls -A "$WORKDIR")" ]] || die "--workdir $WORKDIR is not empty"
        WD=$(cd "$WORKDIR" && pwd)
    else
        WD=$(mktemp -d "${TMPDIR:-/tmp}/slurm-bench.XXXXXX")
        CREATED_WORKDIR=1
    fi
    # munged refuses directories writable by group/other, wants its socket
    # directory searchable by all, and its key readable only by us.
    chmod 0711 "$WD"
    mkdir -p "$WD"/{munge,sock,state,spool,log,run,tmp,gpu,job}
    chmod 0700 "$WD"/munge
    chmod 0755 "$WD"/sock
}

make_munge_key() {
    local key="$WD/munge/munge.key"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$key" >/dev/null 2>&1 \
            || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    else
        dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    fi
    chown "$(id -u):$(id -g)" "$key"
    chmod 0400 "$key"
}

write_config() {
    NODE=$(hostname -s)
    [[ -n "$NODE_CPUS" ]] || NODE_CPUS=$(nproc)
    [[ -n "$CTLD_PORT" ]] || CTLD_PORT=$(free_port)
    [[ -n "$SLURMD_PORT" ]] || SLURMD_PORT=$(free_port)
    # Two port-0 binds in a row can return the same port.
    while [[ "$SLURMD_PORT" == "$CTLD_PORT" ]]; do SLURMD_PORT=$(free_port); done
    local mem i
    # More CPUs than the hardware has would drain the node, unless slurmd is
    # told to trust slurm.conf over what it detects.
    CONFIG_OVERRIDES=""
    if [[ "$NODE_CPUS" != "$(nproc)" ]]; then
        CONFIG_OVERRIDES=$'SlurmdParameters=config_overrides\n'
    fi
    NO_IN_ADDR_ANY=""
    if getent hosts "$NODE" 2>/dev/null | awk '{print $1}' | grep -q '^127\.'; then
        NO_IN_ADDR_ANY=",NoInAddrAny"
    fi
    mem=$(free -m | awk '/^Mem:/ {print $2}')
    # Leave a little memory for the OS, as slurmd -C does not.
    mem=$((mem * 95 / 100))

    # One File= per GPU. A character device with /dev/null's numbers keeps
    # slurmd from logging "not a valid character or block device"; a plain
    # empty file works too (just noisier), so fall back to that.
    for i in 0 1 2 3 4 5 6 7; do
        mknod "$WD/gpu/gpu$i" c 1 3 2>/dev/null || : >"$WD/gpu/gpu$i"
    done

    cat >"$WD/gres.conf" <<EOF
AutoDetect=off
Name=gpu File=$WD/gpu/gpu[0-7]
EOF

    cat >"$WD/slurm.conf" <<EOF
# Generated by benchmarks/peers/slurm.sh; private to $WD.
ClusterName=baibench
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# slurmctld binds to 127.0.0.1 rather than INADDR_ANY; slurmd and srun too
# when the host name resolves to loopback (they bind to that address).
CommunicationParameters=NoCtldInAddrAny${NO_IN_ADDR_ANY}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WD/sock/munge.socket
StateSaveLocation=$WD/state
SlurmdSpoolDir=$WD/spool
SlurmctldPidFile=$WD/run/slurmctld.pid
SlurmdPidFile=$WD/run/slurmd.pid
SlurmctldLogFile=$WD/log/slurmctld.log
SlurmdLogFile=$WD/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$WD/tmp
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=$SCHEDULER
# Throughput: no batching delay at submit and look at the whole queue on
# each event-driven pass.  (No "*interval=" here: sched/builtin reads the
# first "interval=" substring as its own period and rejects 0.)
SchedulerParameters=batch_sched_delay=0,default_queue_depth=1000,partition_job_depth=1000
${EPILOG:+Epilog=$EPILOG}
# Finished jobs are purged soon so the job table stays small.
MinJobAge=2
KillWait=1
MessageTimeout=10
InactiveLimit=0
Waittime=0
${CONFIG_OVERRIDES}GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$mem Gres=gpu:8 State=UNKNOWN
PartitionName=bench Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_daemons() {
    # Foreground mode (-F / -D) in the background, so $! is the daemon itself.
    /usr/sbin/munged -F --socket="$WD/sock/munge.socket" \
        --key-file="$WD/munge/munge.key" --pid-file="$WD/munge/munged.pid" \
        --log-file="$WD/log/munged.log" --seed-file="$WD/munge/munged.seed" \
        >"$WD/log/munged.out" 2>&1 &
    STARTED_PIDS+=($!)
    wait_for "munged socket" 10 test -S "$WD/sock/munge.socket"

    /usr/sbin/slurmctld -D -c -f "$WD/slurm.conf" >"$WD/log/slurmctld.out" 2>&1 &
    STARTED_PIDS+=($!)
    /usr/sbin/slurmd -D -f "$WD/slurm.conf" -N "$NODE" >"$WD/log/slurmd.out" 2>&1 &
    STARTED_PIDS+=($!)
    wait_for "node $NODE idle" 60 node_idle
}

node_idle() { [[ "$(sinfo -h -n "$NODE" -o %T 2>/dev/null)" == idle ]]; }

# wait_for WHAT SECONDS CMD...: poll CMD every 0.1 s; on timeout show log tails.
wait_for() {
    local what=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs)) f pid
    until "$@"; do
        for pid in "${STARTED_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || { log "process $pid exited early"; secs=0; }
        done
        if ((SECONDS >= deadline || secs == 0)); then
            log "timed out waiting for $what; log tails:"
            for f in "$WD"/log/*; do
                printf '==> %s <==\n' "$f" >&2
                tail -n 15 "$f" >&2 || true
            done
            die "Slurm did not come up ($what)"
        fi
        sleep 0.1
    done
}

# Stop exactly the PIDs we started (newest first): SIGTERM, up to 10 s, SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [[ ${#STARTED_PIDS[@]} -ge 3 ]] && kill -0 "${STARTED_PIDS[1]}" 2>/dev/null; then
        # Job steps run in slurmstepd processes that slurmd does not stop on
        # exit; cancel our jobs first so none outlives the cluster.
        scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
        wait_queue_empty 10 || log "jobs still listed after scancel"
    fi
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${STARTED_PIDS[i]}"
    done
    if [[ -n "$WD" ]]; then
        if ((KEEP)); then
            log "kept $WD"
        elif ((CREATED_WORKDIR)); then
            cd /
            rm -rf "$WD"
        else
            cd /
            rm -rf "${WD:?}"/*
        fi
    fi
    exit "$rc"
}

queue_len() { squeue -h -o %i 2>/dev/null | wc -l; }

# wait_queue_empty SECONDS: poll squeue every 0.1 s; 0 when empty.
wait_queue_empty() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        [[ "$(queue_len)" -eq 0 ]] && return 0
        sleep 0.1
    done
    return 1
}

# pct P FILE: nearest-rank percentile of the numbers in FILE.
pct() {
    sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END {
        r = int((p / 100) * NR); if (r < (p / 100) * NR) r++; if (r < 1) r = 1
        print v[r] }'
}

ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
rate() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n / (us / 1e6) }'; }

run_latency() {
    local i t0 t1 f="$WD/job/srun_us"
    : >"$f"
    srun --quiet -n1 --gres=gpu:1 true # warm-up, not timed
    for ((i = 0; i < SRUN_RUNS; i++)); do
        t0=${EPOCHREALTIME/[.,]/}
        srun --quiet -n1 --gres=gpu:1 true
        t1=${EPOCHREALTIME/[.,]/}
        echo $((t1 - t0)) >>"$f"
    done
    SRUN_P50=$(ms "$(pct 50 "$f")")
    SRUN_P99=$(ms "$(pct 99 "$f")")
    SRUN_MIN=$(ms "$(pct 0 "$f")")
    log "srun latency ($SRUN_RUNS runs): p50 ${SRUN_P50} ms, p99 ${SRUN_P99} ms, min ${SRUN_MIN} ms"
}

# submit_batch: M sequential sbatch calls; sets SUBMIT_US (loop time).
submit_batch() {
    local i t0
    t0=${EPOCHREALTIME/[.,]/}
    for ((i = 0; i < JOBS; i++)); do
        sbatch --parsable --quiet --gres=gpu:1 -o /dev/null -e /dev/null \
            -J bench --wrap true >/dev/null
    done
    SUBMIT_US=$((${EPOCHREALTIME/[.,]/} - t0))
}

run_live() {
    local t0
    t0=${EPOCHREALTIME/[.,]/}
    submit_batch
    SUBMIT_PER_S=$(rate "$JOBS" "$SUBMIT_US")
    log "submit: $JOBS sbatch in $(ms "$SUBMIT_US") ms = $SUBMIT_PER_S submissions/s"
    wait_queue_empty 600 || die "live batch did not finish in 600 s"
    LIVE_US=$((${EPOCHREALTIME/[.,]/} - t0))
    LIVE_PER_S=$(rate "$JOBS" "$LIVE_US")
    log "live: first submission -> all $JOBS done in $(ms "$LIVE_US") ms = $LIVE_PER_S jobs/s"
}

run_queue() {
    local t0
    scontrol update PartitionName=bench State=DOWN
    submit_batch
    QUEUED_SUBMIT_PER_S=$(rate "$JOBS" "$SUBMIT_US")
    [[ "$(queue_len)" -eq "$JOBS" ]] || die "expected $JOBS queued jobs, squeue lists $(queue_len)"
    log "queue: $JOBS jobs queued behind a DOWN partition ($QUEUED_SUBMIT_PER_S submissions/s)"
    t0=${EPOCHREALTIME/[.,]/}
    scontrol update PartitionName=bench State=UP
    wait_queue_empty 600 || die "queued batch did not finish in 600 s"
    COMPLETE_US=$((${EPOCHREALTIME/[.,]/} - t0))
    COMPLETE_PER_S=$(rate "$JOBS" "$COMPLETE_US")
    COMPLETE_S=$(awk -v us="$COMPLETE_US" 'BEGIN { printf "%.2f", us / 1e6 }')
    log "queue: release -> all $JOBS done in ${COMPLETE_S} s = $COMPLETE_PER_S jobs/s"
}

emit_json() {
    local version json
    version=$(slurmctld -V | awk '{print $2}')
    json=$(printf '{"tool":"slurm","version":"%s","scheduler":"%s","epilog":%s,"node_cpus":%s,"srun_p50_ms":%s,"srun_p99_ms":%s,"srun_min_ms":%s,"srun_runs":%s,"jobs":%s,"submit_per_s":%s,"live_complete_per_s":%s,"live_seconds":%s,"queued_submit_per_s":%s,"complete_per_s":%s,"complete_seconds":%s,"wall_seconds":%s}' \
        "$version" "$SCHEDULER" "$([[ -n "$EPILOG" ]] && echo true || echo false)" \
        "$NODE_CPUS" "$SRUN_P50" "$SRUN_P99" "$SRUN_MIN" "$SRUN_RUNS" "$JOBS" \
        "$SUBMIT_PER_S" "$LIVE_PER_S" \
        "$(awk -v us="$LIVE_US" 'BEGIN { printf "%.2f", us / 1e6 }')" \
        "$QUEUED_SUBMIT_PER_S" "$COMPLETE_PER_S" "$COMPLETE_S" "$SECONDS")
    if [[ -n "$JSON_FILE" ]]; then
        echo "$json" >"$JSON_FILE"
        log "wrote $JSON_FILE"
    else
        echo "$json"
    fi
}

main() {
    parse_args "$@"
    check_prereqs
    # Clients must talk only to our cluster: drop inherited Slurm settings.
    local v
    for v in $(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SQUEUE|SALLOC|SINFO|SCONTROL)_' || true); do
        unset "$v"
    done
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    setup_workdir
    export SLURM_CONF="$WD/slurm.conf"
    make_munge_key
    write_config
    log "work dir $WD; ports ctld $CTLD_PORT, slurmd $SLURMD_PORT; $SCHEDULER, Epilog=${EPILOG:-none}, CPUs=$NODE_CPUS"
    # Jobs inherit the submission directory; keep it inside the work dir.
    cd "$WD/job"
    start_daemons
    log "node $NODE idle after ${SECONDS} s"
    run_latency
    run_live
    run_queue
    log "total wall time ${SECONDS} s"
    emit_json
}

main "$@"
