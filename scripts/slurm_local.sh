#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for testing the SLURM profile against a real scheduler.
#
#   bash scripts/slurm_local.sh up DIR     install slurm/munge if missing, write DIR/slurm.conf, start the daemons
#   bash scripts/slurm_local.sh down DIR   stop what `up DIR` started (every job of this cluster cancelled first)
#
# Client commands find the cluster through /etc/slurm/slurm.conf, a link to DIR/slurm.conf made by `up`
# (removed by `down`; an existing file there is never replaced): inside a job, the SLURM plugin's jobstep
# drops SLURM_CONF from srun's environment, so srun reads only the default path. `up` prints
# SLURM_CONF=DIR/slurm.conf last. Needs root (daemons, apt-get, the munge user).
# Why these settings (checked on Debian 12, SLURM 22.05): cons_tres schedules the declared GPU; no cgroups
# in a container, hence proctrack/linuxproc and task/none; no slurmdbd, hence accounting off (sacct then
# fails, so profiles must poll with squeue) and MinJobAge >= 120 s (below it the SLURM plugin falls back to
# sacct); a GPU needs a gres.conf File= line (a count-only line leaves the node INVAL). CR_Core: CPUs are
# consumed, memory only checked (a request above the node's is refused), so jobs with a cluster profile's
# memory still run side by side. EnforcePartLimits=ALL: sbatch refuses a job the partition can never hold
# (more CPUs than the node) instead of leaving it PENDING forever.
set -euo pipefail

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf=$dir/slurm.conf
etc_conf=/etc/slurm/slurm.conf
marker="# written by scripts/slurm_local.sh"
ctld_port=${SLURM_LOCAL_CTLD_PORT:-6817}
slurmd_port=${SLURM_LOCAL_SLURMD_PORT:-6818}

[[ $(id -u) -eq 0 ]] || { echo "slurm_local.sh: needs root (daemons run as root, munged as munge)" >&2; exit 3; }

install_packages() {
    local missing=()
    for cmd_pkg in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
        command -v "${cmd_pkg%%:*}" >/dev/null || missing+=("${cmd_pkg#*:}")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    echo "slurm_local.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    local apt_=(bash "$(dirname "$0")/apt_get.sh")  # one apt-get at a time (parallel test workers)
    "${apt_[@]}" update -qq
    # policy-rc.d may refuse to start the services here: we start them ourselves below
    "${apt_[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        echo "slurm_local.sh: munged already running, reused" >&2
        return
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge /etc/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    runuser -u munge -- munged
    touch "$dir/started_munged"  # so `down` stops only a munged this script started
    for _ in $(seq 50); do munge_works && return; sleep 0.2; done
    echo "slurm_local.sh: munged did not come up (see /var/log/munge/munged.log)" >&2
    exit 1
}

write_config() {
    local cpus mem_mb host
    cpus=$(nproc)
    mem_mb=$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')  # below the real memory, or slurmd reports INVAL
    host=$(hostname -s)
    mkdir -p "$dir/state" "$dir/spool"
    cat >"$conf" <<EOF
$marker
ClusterName=netdyn-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MinJobAge=600
EnforcePartLimits=ALL
ReturnToService=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    # a scheduling-only GPU: File= is required, /dev/null stands in for the device
    echo "NodeName=localhost Name=gpu File=/dev/null" >"$dir/gres.conf"
}

wait_idle() {
    local state
    for _ in $(seq 60); do
        state=$(SLURM_CONF=$conf sinfo -h -n localhost -o %T 2>/dev/null || true)
        case $state in
            idle*|mix*|alloc*) return ;;
            *inval*|*drain*) break ;;
        esac
        sleep 0.5
    done
    echo "slurm_local.sh: node not idle (state '${state:-none}'); logs in $dir" >&2
    SLURM_CONF=$conf scontrol show node localhost >&2 || true
    exit 1
}

stop_pidfile() {
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
}

case $action in
    up)
        install_packages
        start_munge
        write_config
        # replace only a link this script made (its target gone, or a config it wrote), never a real config
        if [[ -e $etc_conf && ! -L $etc_conf ]] || { [[ -e $etc_conf ]] && ! grep -q "^$marker" "$etc_conf"; }; then
            echo "slurm_local.sh: $etc_conf is another cluster's config; not replaced, not started" >&2
            exit 1
        fi
        mkdir -p "$(dirname "$etc_conf")" && ln -sfn "$conf" "$etc_conf"
        slurmctld -f "$conf"
        slurmd -f "$conf" -N localhost
        wait_idle
        echo "SLURM_CONF=$conf"
        ;;
    down)
        if [[ -f $conf ]]; then
            jobs=$(SLURM_CONF=$conf timeout 20 squeue --noheader --format=%i 2>/dev/null || true)
            [[ -z $jobs ]] || SLURM_CONF=$conf timeout 20 scancel --quiet $jobs 2>/dev/null || true
        fi
        stop_pidfile "$dir/slurmd.pid"
        stop_pidfile "$dir/slurmctld.pid"
        [[ $(readlink "$etc_conf" || true) == "$conf" ]] && rm -f "$etc_conf"
        if [[ -f $dir/started_munged ]]; then
            munged --stop 2>/dev/null || true
            rm -f "$dir/started_munged"
        fi
        ;;
    *) usage ;;
esac
