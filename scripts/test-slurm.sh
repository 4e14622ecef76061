#!/usr/bin/env bash
# The SLURM scripts in slurm/, tried on a real single-node SLURM.
#
#   bash scripts/test-slurm.sh          # as root (it installs Debian packages)
#
# What it does:
#   1. installs Debian's slurm-wlm, munge and hdf5-tools (h5dump, h5diff);
#   2. writes a one-node slurm.conf for this machine (its CPUs and memory from
#      `slurmd -C`) into a temporary directory, and starts munged, slurmctld
#      and slurmd there, in the foreground of background processes whose PIDs
#      it keeps; on exit it cancels the test's jobs and stops exactly those
#      PIDs (no systemctl, no pkill). Its own ports, key and state, so a
#      SLURM or munge already on the machine is left alone;
#   3. submits slurm/single-node.sbatch, slurm/multi-node.sbatch (srun --mpi=pmix
#      if this SLURM has pmix, and SAMPO_LAUNCHER=mpiexec) and
#      slurm/array.sbatch (2 elements) on small specs, and checks that each
#      job COMPLETED, that its output has status "complete" and that its log
#      has the name the script documents;
#   4. the requeue case: a job with a 2-minute time limit and a run of about
#      80 s of sampling gets SIGUSR1 (--signal=B:USR1@60), sampo writes a
#      checkpoint and exits 75, the script requeues the job, the job restarts,
#      resumes (sampo run --resume) and completes; its chain, log_prob and
#      accepted datasets must be identical (h5diff) to an uninterrupted local
#      run of the same spec. Then a 2-element array whose element 2 gets
#      SIGUSR1: only that element may be requeued, and both must give the
#      uninterrupted run's samples. These need a sampo with `run --resume`:
#      without one they are reported as SKIPPED, which fails the script only
#      when SAMPO_SLURM_REQUIRE_RESUME=1 (CI sets it).
#
# Prints a PASS/FAIL line per check and a summary ("slurm: N passed, N failed");
# exits non-zero on any failure. Takes about 3 minutes (10 s without the
# requeue cases); every wait has a deadline, under 10 minutes in all.
#
# Environment:
#   SAMPO_BIN                    the sampo binary (default: the release build)
#   SAMPO_SLURM_REQUIRE_RESUME=1 a sampo without --resume is a failure
#   SAMPO_SLURM_SKIP_REQUEUE=1   leave out the requeue case (quick check)
#   SAMPO_SLURM_KEEP=1           keep the temporary directory (kept anyway on failure)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sampo="${SAMPO_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/sampo}"
require_resume="${SAMPO_SLURM_REQUIRE_RESUME:-0}"
started_at=$SECONDS

say() { echo "test-slurm: $*"; }
die() {
    echo "test-slurm: $*" >&2
    exit 1
}

[ -x "$sampo" ] || die "no sampo binary at $sampo: build it first (cargo build --release --locked) or set SAMPO_BIN"
sampo="$(cd "$(dirname "$sampo")" && pwd)/$(basename "$sampo")"

# --- 1. Packages -------------------------------------------------------------------
pkgs=(slurm-wlm munge hdf5-tools)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "needs root to install ${missing[*]} (apt-get) and to run SLURM's daemons"
    say "installing ${missing[*]}"
    # Debian starts a package's service on installation unless policy-rc.d
    # says no (containers usually have one): this test starts its own daemons.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$made_policy" ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
fi
[ "$(id -u)" -eq 0 ] || die "needs root to run SLURM's daemons"
# Jobs run as root here; Open MPI refuses that unless told (sbatch passes the
# environment on to the jobs).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# --- Results -------------------------------------------------------------------------
passed=0
failed=0
skipped=0
pass() {
    passed=$((passed + 1))
    echo "PASS  $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL  $*"
}
skip() {
    skipped=$((skipped + 1))
    echo "SKIP  $*"
}
# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check() {
    local what="$1"
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- 2. A one-node SLURM in a temporary directory -------------------------------------
tmp="$(mktemp -d /tmp/sampo-slurm-test.XXXXXX)"
chmod 755 "$tmp" # munged wants every directory above its socket to be searchable
munged_pid=""
slurmctld_pid=""
slurmd_pid=""
ref_pid=""

stop_pid() { # stop_pid NAME PID: SIGTERM, up to 15 s, then SIGKILL
    local name="$1" pid="$2"
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    echo "test-slurm: $name (pid $pid) did not stop on SIGTERM; SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    if [ -n "$slurmctld_pid" ] && kill -0 "$slurmctld_pid" 2>/dev/null; then
        # The test's jobs (only this cluster's: SLURM_CONF points at it), so
        # that no job step outlives slurmd.
        scancel --quiet --user=root 2>/dev/null
        for _ in $(seq 1 30); do
            [ -z "$(squeue -h 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    stop_pid "reference run" "$ref_pid"
    stop_pid slurmd "$slurmd_pid"
    stop_pid slurmctld "$slurmctld_pid"
    stop_pid munged "$munged_pid"
    wait 2>/dev/null
    if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ]; then
        echo "test-slurm: logs and files kept in $tmp" >&2
        for f in "$tmp"/log/*.log; do
            [ -f "$f" ] || continue
            echo "---- last lines of $f" >&2
            tail -n 15 "$f" >&2
        done
    elif [ "${SAMPO_SLURM_KEEP:-0}" = 1 ]; then
        echo "test-slurm: files kept in $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool" "$tmp/log" "$tmp/work"
chmod 755 "$tmp/munge"

# munged with its own key and socket.
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
munged --foreground --socket="$tmp/munge/munge.socket" --key-file="$tmp/munge/munge.key" \
    --log-file="$tmp/log/munged.log" --pid-file="$tmp/munge/munged.pid" \
    --seed-file="$tmp/munge/munged.seed" >"$tmp/log/munged.out" 2>&1 &
munged_pid=$!
for _ in $(seq 1 50); do
    munge -S "$tmp/munge/munge.socket" -n 2>/dev/null | unmunge -S "$tmp/munge/munge.socket" >/dev/null 2>&1 && break
    kill -0 "$munged_pid" 2>/dev/null || die "munged exited: $(cat "$tmp/log/munged.out")"
    sleep 0.2
done
munge -S "$tmp/munge/munge.socket" -n | unmunge -S "$tmp/munge/munge.socket" >/dev/null ||
    die "munged does not answer"

# Two free TCP ports for slurmctld and slurmd (not SLURM's usual 6817/6818,
# which a real SLURM on this machine may use).
if command -v python3 >/dev/null; then
    read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
else
    ctld_port=$((20000 + RANDOM % 20000))
    slurmd_port=$((ctld_port + 1))
fi

node="$(hostname -s)"
# This machine as SLURM sees it: "NodeName=<host> CPUs=… RealMemory=…".
node_line="$(slurmd -C | head -n 1)"
node_cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")"
[ -n "$node_cpus" ] || die "cannot read this machine's CPUs from 'slurmd -C': $node_line"
node_line="${node_line/NodeName=* CPUs=/NodeName=$node NodeAddr=127.0.0.1 CPUs=}"

export SLURM_CONF="$tmp/slurm.conf"
cat >"$SLURM_CONF" <<EOF
# One-node test cluster of scripts/test-slurm.sh.
ClusterName=sampotest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start
# again (default 120 s).
AuthInfo=socket=$tmp/munge/munge.socket,cred_expire=10
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: works in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobRequeue=1
# Finished jobs stay visible to 'scontrol show job' for 5 minutes (there is
# no accounting database, so no sacct).
MinJobAge=300
# Job ids away from 1, so that two test clusters on one machine rarely share
# per-job paths such as /tmp/spmix_appdir_<uid>_<jobid>.
FirstJobId=$((1000 + RANDOM % 50000))
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
$node_line State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -f "$SLURM_CONF" >"$tmp/log/slurmctld.out" 2>&1 &
slurmctld_pid=$!
for _ in $(seq 1 50); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && break
    kill -0 "$slurmctld_pid" 2>/dev/null || die "slurmctld exited: $(tail -n 20 "$tmp/log/slurmctld.out")"
    sleep 0.2
done
slurmd -D -N "$node" -f "$SLURM_CONF" >"$tmp/log/slurmd.out" 2>&1 &
slurmd_pid=$!
for _ in $(seq 1 100); do
    [ "$(sinfo -h -n "$node" -o %T 2>/dev/null)" = idle ] && break
    kill -0 "$slurmd_pid" 2>/dev/null || die "slurmd exited: $(tail -n 20 "$tmp/log/slurmd.out")"
    sleep 0.2
done
[ "$(sinfo -h -n "$node" -o %T)" = idle ] || die "the node is not idle: $(sinfo -h -n "$node" -o '%T %E')"
say "SLURM $(sinfo -V | awk '{print $2}') up in $tmp: node $node with $node_cpus CPUs; $("$sampo" --version | head -n 1)"

# --- Helpers -------------------------------------------------------------------------
# job_states ID: "STATE" per job record of ID (an array has one per element).
job_states() {
    scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'
}
# wait_job ID DEADLINE: until every record of the job is finished, or until
# $SECONDS reaches DEADLINE; prints the states. Returns 1 on timeout.
wait_job() {
    local id="$1" deadline="$2" states=""
    while [ "$SECONDS" -lt "$deadline" ]; do
        states="$(job_states "$id")"
        if [ -n "$states" ] && ! grep -qvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$' <<<"$states"; then
            echo "$states" | tr '\n' ' '
            return 0
        fi
        sleep 1
    done
    echo "not finished in time: $(echo "$states" | tr '\n' ' ')"
    return 1
}
all_completed() { # all_completed "STATES": every word is COMPLETED
    local s
    [ -n "$1" ] || return 1
    for s in $1; do [ "$s" = COMPLETED ] || return 1; done
}
job_field() { # job_field ID FIELD: e.g. Restarts, ExitCode (first record)
    scontrol show job -o "$1" 2>/dev/null | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# h5_attr FILE NAME: a root attribute's value (strings without quotes).
h5_attr() {
    h5dump -a "/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' | head -n 1
}
is_complete() { # the file exists and its status is "complete"
    [ -f "$1" ] && [ "$(h5_attr "$1" status)" = complete ]
}
# submit ARGS...: sbatch from the work directory; prints the job id.
submit() {
    (cd "$tmp/work" && sbatch --parsable "$@") | cut -d';' -f1
}
show_log() { # on failure: the end of a job's log
    [ -f "$1" ] && { echo "---- $1"; tail -n 25 "$1"; } || echo "---- no log $1"
}

export SAMPO="$sampo"
# The quickstart, shrunk to about a second.
small=(--set sampler.steps=400 --set sampler.burn=100 --set states.rosenbrock.steps=400
    --set states.rosenbrock.burn=100 --quiet)
cp "$repo/configs/quickstart.toml" "$tmp/work/quickstart.toml"

# --- 3a. single-node.sbatch ------------------------------------------------------------
# Its defaults (1 node, 1 task, 2 CPUs) must fit any node: no size options.
# The output is the spec's own (quickstart.h5): the script must find it.
if [ "$node_cpus" -ge 2 ]; then
    single=$(submit "$repo/slurm/single-node.sbatch" quickstart.toml "${small[@]}")
else
    single=$(submit --cpus-per-task=1 "$repo/slurm/single-node.sbatch" quickstart.toml "${small[@]}")
fi
# --- 3b. multi-node.sbatch, srun --mpi=pmix and mpiexec: 2 ranks × 1 thread ---------
mn_size=(--nodes=1 --ntasks-per-node=2 --cpus-per-task=1)
if srun --mpi=list 2>&1 | grep -qw pmix; then
    multi_srun=$(submit "${mn_size[@]}" "$repo/slurm/multi-node.sbatch" quickstart.toml multi-srun.h5 -- "${small[@]}")
else
    multi_srun=""
fi
multi_mpiexec=$(SAMPO_LAUNCHER=mpiexec submit "${mn_size[@]}" "$repo/slurm/multi-node.sbatch" \
    quickstart.toml multi-mpiexec.h5 "${small[@]}")
# --- 3c. array.sbatch: 2 elements, one spec each -----------------------------------------
cp "$repo/configs/quickstart.toml" "$tmp/work/qs-one.toml"
sed 's/^seed = 42 /seed = 43 /' "$repo/configs/quickstart.toml" >"$tmp/work/qs-two.toml"
printf '# the array test\nqs-one.toml\n\n  qs-two.toml\n' >"$tmp/work/specs.txt"
array=$(submit --array=1-2 --cpus-per-task=1 "$repo/slurm/array.sbatch" specs.txt results "${small[@]}")
say "submitted: single-node $single, multi-node ${multi_srun:-(no pmix)} (srun) and $multi_mpiexec (mpiexec), array $array"

# 90 s for all four (each takes seconds).
w="$tmp/work"
deadline=$((SECONDS + 90))
states="$(wait_job "$single" "$deadline")" || true
if all_completed "$states" && is_complete "$w/quickstart.h5"; then
    pass "single-node.sbatch: job $single COMPLETED, quickstart.h5 complete"
else
    fail "single-node.sbatch: job $single: $states; quickstart.h5 status '$(h5_attr "$w/quickstart.h5" status)'"
    show_log "$w/sampo-$single.out"
fi
check "single-node.sbatch: log named sampo-$single.out" test -s "$w/sampo-$single.out"

if [ -n "$multi_srun" ]; then
    states="$(wait_job "$multi_srun" "$deadline")" || true
    if all_completed "$states" && is_complete "$w/multi-srun.h5" && [ "$(h5_attr "$w/multi-srun.h5" ranks)" = 2 ]; then
        pass "multi-node.sbatch (srun --mpi=pmix): job $multi_srun COMPLETED, 2 ranks, output complete"
    else
        fail "multi-node.sbatch (srun --mpi=pmix): job $multi_srun: $states; status '$(h5_attr "$w/multi-srun.h5" status)', ranks '$(h5_attr "$w/multi-srun.h5" ranks)'"
        show_log "$w/sampo-$multi_srun.out"
    fi
    check "multi-node.sbatch (srun): log named sampo-$multi_srun.out" test -s "$w/sampo-$multi_srun.out"
else
    fail "multi-node.sbatch (srun): 'srun --mpi=list' has no pmix: $(srun --mpi=list 2>&1 | tr '\n' ' ')"
fi

states="$(wait_job "$multi_mpiexec" "$deadline")" || true
if all_completed "$states" && is_complete "$w/multi-mpiexec.h5" && [ "$(h5_attr "$w/multi-mpiexec.h5" ranks)" = 2 ]; then
    pass "multi-node.sbatch (SAMPO_LAUNCHER=mpiexec): job $multi_mpiexec COMPLETED, 2 ranks, output complete"
else
    fail "multi-node.sbatch (mpiexec): job $multi_mpiexec: $states; status '$(h5_attr "$w/multi-mpiexec.h5" status)', ranks '$(h5_attr "$w/multi-mpiexec.h5" ranks)'"
    show_log "$w/sampo-$multi_mpiexec.out"
fi
check "multi-node.sbatch (mpiexec): log named sampo-$multi_mpiexec.out" test -s "$w/sampo-$multi_mpiexec.out"

states="$(wait_job "$array" "$deadline")" || true
if [ "$(wc -w <<<"$states")" -eq 2 ] && all_completed "$states" &&
    is_complete "$w/results/qs-one.h5" && is_complete "$w/results/qs-two.h5" &&
    [ "$(h5_attr "$w/results/qs-two.h5" seed)" = 43 ]; then
    pass "array.sbatch: 2 elements of job $array COMPLETED, results/qs-one.h5 and results/qs-two.h5 complete"
else
    fail "array.sbatch: job $array: $states; results: $(ls "$w/results" 2>&1 | tr '\n' ' ')"
    show_log "$w/sampo-${array}_1.out"
    show_log "$w/sampo-${array}_2.out"
fi
check "array.sbatch: logs named sampo-${array}_1.out and sampo-${array}_2.out" \
    test -s "$w/sampo-${array}_1.out" -a -s "$w/sampo-${array}_2.out"

# --- 4. The requeue case ----------------------------------------------------------------
# A job that reaches its time limit: --time=2 (120 s) and SIGUSR1 60 s before
# the end. SLURM checks the time limits every 30 s and sends the signal up to
# 60 s early, so it comes 30-60 s after the start. The spec samples for about
# 80 s on one thread (2 states × 16 walkers × 2500 steps × 1 ms, busy-waited),
# so the first run is always paused; the requeued run has 20-50 s left and
# may be paused once more. Each requeue waits about cred_expire (10 s) before
# it may start again.
requeue_case() {
    local spec="$w/requeue.toml" job states restarts ds st rc
    cat >"$spec" <<'EOF'
# scripts/test-slurm.sh, requeue case: about 80 s of sampling on one thread.
[run]
name = "requeue"
seed = 11
output = "requeue.h5"

[sampler]
kind = "ensemble"
walkers = 16
steps = 2500
burn = 100
moves = [{ kind = "stretch", a = 2.0, weight = 0.8 }, { kind = "de", weight = 0.2 }]

[[states]]
name = "a"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.3], [0.3, 1.0]] }
prior = { kind = "uniform", low = [-50.0, -50.0], high = [50.0, 50.0] }
init = { kind = "ball", center = [0.0, 1.0], radius = 0.1 }
cost_us = 1000

[[states]]
name = "b"
params = ["x", "y", "z"]
model = { kind = "gaussian", mean = [1.0, 0.0, -1.0], cov = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.0, 0.5, 1.0]] }
prior = { kind = "uniform", low = [-50.0, -50.0, -50.0], high = [50.0, 50.0, 50.0] }
init = { kind = "ball", center = [1.0, 0.0, -1.0], radius = 0.1 }
cost_us = 1000
EOF
    # The job, with no output argument: the script takes the name from the
    # plan. At most 4 requeues: a sampo that pauses without progress fails.
    job=$(SAMPO_MAX_REQUEUES=4 submit --time=2 --signal=B:USR1@60 --cpus-per-task=1 \
        "$repo/slurm/single-node.sbatch" requeue.toml --quiet)
    say "requeue case: job $job submitted; meanwhile the uninterrupted reference run (nice 19)"
    # The reference, on the other core, niced so that SLURM's daemons are not
    # held up (a late signal would make the job overrun its time limit).
    (cd "$w" && nice -n 19 "$sampo" run requeue.toml --threads 1 -o reference.h5 --quiet) \
        >"$w/reference.out" 2>&1 &
    ref_pid=$!
    states="$(wait_job "$job" $((SECONDS + 240)))" || true
    rc=0
    wait "$ref_pid" || rc=$?
    ref_pid=""
    restarts="$(job_field "$job" Restarts)"
    if all_completed "$states" && is_complete "$w/requeue.h5" && [ "${restarts:-0}" -ge 1 ]; then
        pass "requeue: job $job signalled, paused, requeued $restarts time(s), resumed and COMPLETED; requeue.h5 complete"
    else
        fail "requeue: job $job: $states; restarts '$restarts', exit code $(job_field "$job" ExitCode); requeue.h5: $(ls "$w"/requeue.h5* 2>&1 | tr '\n' ' ')"
        show_log "$w/sampo-$job.out"
    fi
    # The log (appended to by every run) tells the story, in order.
    local log="$w/sampo-$job.out"
    if [ -f "$log" ] && grep -q 'got SIGUSR1' "$log" && grep -q 'sampo paused (exit 75)' "$log" &&
        grep -q "job $job requeued" "$log" && grep -q 'resuming from the checkpoint' "$log" &&
        grep -q 'sampo finished' "$log"; then
        pass "requeue: log sampo-$job.out shows SIGUSR1, exit 75, requeue, resume, finish"
    else
        fail "requeue: log sampo-$job.out lacks a step (SIGUSR1, exit 75, requeue, resume, finish)"
        [ -f "$log" ] && grep -E 'job script|sampo (paused|finished|exited)|requeue|resuming|run [0-9]' "$log"
    fi
    if [ "$rc" -ne 0 ] || ! is_complete "$w/reference.h5"; then
        fail "requeue: the reference run failed (exit $rc)"
        tail -n 5 "$w/reference.out"
        return
    fi
    # Every state's chain, log_prob and accepted, bit for bit.
    local compared=0 differ=()
    for st in a b; do
        for ds in chain log_prob accepted; do
            if [ -f "$w/requeue.h5" ] && h5diff -q "$w/reference.h5" "$w/requeue.h5" "/states/$st/$ds" "/states/$st/$ds" >/dev/null 2>&1; then
                compared=$((compared + 1))
            else
                differ+=("/states/$st/$ds")
            fi
        done
    done
    if [ ${#differ[@]} -eq 0 ]; then
        pass "requeue: $compared datasets (/states/{a,b}/{chain,log_prob,accepted}) identical to the uninterrupted run"
    else
        fail "requeue: differ from the uninterrupted run (or missing): ${differ[*]}"
    fi
}

# One element of an array paused and requeued: only that element may be
# requeued (not the whole array), and it must resume to the same samples.
# The requeue case's spec, shortened to about 22 s per element; element 2 is
# sent SIGUSR1 by hand (scancel --batch --signal=USR1 <array>_2), as --signal
# would, once its sampo is running.
array_requeue_case() {
    local job short=(--set sampler.steps=700) e states r1 r2 log1 log2 ok st ds differ=()
    cp "$w/requeue.toml" "$w/elem-one.toml"
    cp "$w/requeue.toml" "$w/elem-two.toml"
    printf 'elem-one.toml\nelem-two.toml\n' >"$w/elems.txt"
    job=$(SAMPO_MAX_REQUEUES=4 submit --array=1-2 --cpus-per-task=1 "$repo/slurm/array.sbatch" \
        elems.txt elems "${short[@]}" --quiet)
    say "array requeue case: job $job submitted"
    ok=""
    for _ in $(seq 1 120); do
        if [ -e "$w/elems/elem-two.h5.partial" ] && [ -e "$w/elems/elem-one.h5.partial" ]; then
            ok=1
            break
        fi
        sleep 0.5
    done
    if [ -z "$ok" ]; then
        fail "array requeue: the elements did not start within 60 s"
        return
    fi
    sleep 3
    scancel --batch --signal=USR1 "${job}_2"
    (cd "$w" && nice -n 19 "$sampo" run elem-two.toml "${short[@]}" --threads 1 -o elem-reference.h5 --quiet) \
        >"$w/elem-reference.out" 2>&1 &
    ref_pid=$!
    states="$(wait_job "$job" $((SECONDS + 150)))" || true
    wait "$ref_pid" || true
    ref_pid=""
    # Each element's record: "<task id> <restarts>".
    r1="$(scontrol show job -o "$job" | sed -n 's/.*ArrayTaskId=1 .*Restarts=\([0-9]*\).*/\1/p')"
    r2="$(scontrol show job -o "$job" | sed -n 's/.*ArrayTaskId=2 .*Restarts=\([0-9]*\).*/\1/p')"
    log1="$w/sampo-${job}_1.out"
    log2="$w/sampo-${job}_2.out"
    if all_completed "$states" && [ "$(wc -w <<<"$states")" -eq 2 ] && [ "$r1" = 0 ] && [ "${r2:-0}" -ge 1 ] &&
        is_complete "$w/elems/elem-one.h5" && is_complete "$w/elems/elem-two.h5" &&
        grep -q "element ${job}_2 requeued" "$log2" && grep -q 'resuming from the checkpoint' "$log2" &&
        ! grep -q 'got SIG' "$log1"; then
        pass "array requeue: element ${job}_2 paused, requeued alone ($r2 time(s)), resumed; element 1 untouched; both COMPLETED"
    else
        fail "array requeue: job $job: states $states; restarts element 1 '$r1', element 2 '$r2'"
        show_log "$log1"
        show_log "$log2"
    fi
    if ! is_complete "$w/elem-reference.h5"; then
        fail "array requeue: the reference run failed"
        tail -n 5 "$w/elem-reference.out"
        return
    fi
    for e in one two; do
        for st in a b; do
            for ds in chain log_prob accepted; do
                h5diff -q "$w/elem-reference.h5" "$w/elems/elem-$e.h5" "/states/$st/$ds" "/states/$st/$ds" \
                    >/dev/null 2>&1 || differ+=("elem-$e:/states/$st/$ds")
            done
        done
    done
    if [ ${#differ[@]} -eq 0 ]; then
        pass "array requeue: both elements' chain, log_prob and accepted identical to the uninterrupted run"
    else
        fail "array requeue: differ from the uninterrupted run (or missing): ${differ[*]}"
    fi
}

if [ "${SAMPO_SLURM_SKIP_REQUEUE:-0}" = 1 ]; then
    skip "requeue cases: left out (SAMPO_SLURM_SKIP_REQUEUE=1)"
elif ! "$sampo" run --help 2>/dev/null | grep -q -- '--resume'; then
    if [ "$require_resume" = 1 ]; then
        fail "requeue cases: this sampo has no 'run --resume' (SAMPO_SLURM_REQUIRE_RESUME=1)"
    else
        skip "requeue cases: this sampo has no 'run --resume'; requeue and resume are NOT tested (SAMPO_SLURM_REQUIRE_RESUME=1 makes this a failure)"
    fi
else
    requeue_case
    array_requeue_case
fi

say "took $((SECONDS - started_at)) s"
echo "slurm: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
