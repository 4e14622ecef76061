#!/usr/bin/env bash
# Whole-run speed of the ensemble sampler on one core, side by side with its
# peers, on one problem: a 10-D Gaussian with a fixed random covariance
# R diag(σ²) Rᵀ, a wide uniform prior box, 64 walkers, stretch move a = 2.
#
#   (a) sampo run --threads 1 (every step stored to HDF5, summary included;
#       timed by the root attribute wall_seconds); a second run storing
#       every step but summarising only the last 200 (burn = all but 200)
#       gives sampling plus storing, and a third storing every 100th step
#       only gives the sampling alone: their differences are the shares of
#       the end-of-task diagnostics and of storage;
#   (b) emcee, log_prob vectorised with numpy, BLAS pinned to one thread;
#   (c) examples/tight_loop.rs: the same update hand-written, nothing stored;
#   (d) start-up: a one-task run's whole process, alone and under mpiexec -n 2
#       next to a minimal MPI program.
#
#   scripts/bench-ensemble.sh                  # about half a minute
#   SAMPO_STEPS=50000 scripts/bench-ensemble.sh
#   SAMPO_ONLY=1 scripts/bench-ensemble.sh     # sampo's three runs only
#
# Prints walker-steps per second for each, and the ratios. One run each, so
# the ratios carry the noise of one run; compare them, not absolute times.
# Builds sampo and the example, and sets up the Python venv (python-env.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
steps="${SAMPO_STEPS:-20000}"
emcee_seconds="${EMCEE_MIN_SECONDS:-5}"
tight_seconds="${TIGHT_MIN_SECONDS:-2}"
sampo_only="${SAMPO_ONLY:-0}"

echo "building sampo and examples/tight_loop (release) ..." >&2
cargo build --release --quiet
[ "$sampo_only" = 1 ] || cargo build --release --quiet --example tight_loop
bash scripts/python-env.sh
venv="${SAMPO_VENV:-$repo/.venv}"
py="$venv/bin/python"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
spec="$tmp/bench-ensemble.toml"
"$py" scripts/bench_emcee.py problem "$spec" --steps "$steps"

# key=value lines → the value of one key.
value() { sed -n "s/^$1=//p" <<<"$2"; }

echo "sampo: $steps steps × 64 walkers, --threads 1 ..." >&2
start=$(date +%s.%N)
target/release/sampo run "$spec" --output "$tmp/sampo.h5" --threads 1 --force --quiet
end=$(date +%s.%N)
sampo_out="$("$py" scripts/bench_emcee.py sampo-times "$tmp/sampo.h5")"
sampo_process=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')
# The burn-in of the next two runs covers all but the last 200 steps, so
# that the diagnostics computed at the end of the task (on the rows after
# burn-in) cost next to nothing. Every step stored: sampling plus storing.
sed -e "s/^burn = 0\$/burn = $((steps - 200))/" "$spec" >"$tmp/store.toml"
grep -q "^burn = $((steps - 200))\$" "$tmp/store.toml" || { echo "bench: no 'burn = 0' line in $spec" >&2; exit 1; }
target/release/sampo run "$tmp/store.toml" --output "$tmp/store.h5" --threads 1 --force --quiet
store_out="$("$py" scripts/bench_emcee.py sampo-times "$tmp/store.h5")"
# Every 100th step stored: what sampling alone costs.
sed -e 's/^thin = 1$/thin = 100/' "$tmp/store.toml" >"$tmp/thin100.toml"
grep -q '^thin = 100$' "$tmp/thin100.toml" || { echo "bench: no 'thin = 1' line in $spec" >&2; exit 1; }
target/release/sampo run "$tmp/thin100.toml" --output "$tmp/thin100.h5" --threads 1 --force --quiet
thin_out="$("$py" scripts/bench_emcee.py sampo-times "$tmp/thin100.h5")"

# sampo's own runs: the whole run, and the shares of diagnostics and storage.
shares() {
    awk -v ws="$(value walker_steps "$sampo_out")" -v wall="$(value wall_seconds "$sampo_out")" \
        -v store="$(value wall_seconds "$store_out")" -v thin="$(value wall_seconds "$thin_out")" \
        'BEGIN {
             print "sampo --threads 1, " ws " walker-steps (wall_seconds of three runs)"
             printf "  thin = 1 (everything)                  %8.3f s  %.2f x sampling alone\n", wall, wall / thin
             printf "  thin = 1, diagnostics of 200 rows only %8.3f s  %.2f x\n", store, store / thin
             printf "  thin = 100, sampling alone             %8.3f s\n", thin
             printf "  end-of-task diagnostics %.3f s (%.0f%% of the run), storing %.3f s (%.0f%%)\n", \
                 wall - store, 100 * (wall - store) / wall, store - thin, 100 * (store - thin) / wall
         }'
}
# Start-up: a one-task run (4 walkers × 5 steps) as a whole process, the
# bare binary (`--version`: loading its libraries), and under mpiexec -n 2
# next to a minimal MPI program (init, a barrier, finalize) built here: the
# difference is what sampo adds to the launch and to MPI's own start-up.
startup() {
    "$py" scripts/bench_dispatch.py tiny-spec "$tmp/one.toml" --tasks 1
    ms_per() {  # REPEATS COMMAND...: mean wall per run in ms
        local n=$1 t0 t1
        shift
        t0=$(date +%s%N)
        for _ in $(seq "$n"); do "$@" >/dev/null; done
        t1=$(date +%s%N)
        echo $(( (t1 - t0) / n / 100000 )) | sed 's/.$/.&/'
    }
    local run=(target/release/sampo run "$tmp/one.toml" -o "$tmp/one.h5" --force -q --threads 1)
    echo "start-up (mean wall of repeated runs, ms):"
    echo "  sampo --version (the binary and its libraries)  $(ms_per 20 target/release/sampo --version)"
    echo "  sampo run, one tiny task, whole process         $(ms_per 20 "${run[@]}")"
    if command -v mpicc >/dev/null && command -v mpiexec >/dev/null; then
        printf '#include <mpi.h>\nint main(int c, char **v) { int p; MPI_Init_thread(&c, &v, MPI_THREAD_FUNNELED, &p);\n  MPI_Barrier(MPI_COMM_WORLD); MPI_Finalize(); return 0; }\n' >"$tmp/hello.c"
        mpicc -O2 "$tmp/hello.c" -o "$tmp/hello"
        local mpi=(mpiexec --oversubscribe -n 2)
        [ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
        echo "  mpiexec -n 2, minimal MPI program               $(ms_per 5 "${mpi[@]}" "$tmp/hello")"
        echo "  mpiexec -n 2 sampo run, one tiny task           $(ms_per 5 "${mpi[@]}" "${run[@]}")"
    fi
}

if [ "$sampo_only" = 1 ]; then
    shares
    startup
    exit 0
fi

echo "emcee: at least $emcee_seconds s ..." >&2
emcee_out="$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    "$py" scripts/bench_emcee.py emcee "$spec" --min-seconds "$emcee_seconds")"

echo "tight loop: at least $tight_seconds s ..." >&2
tight_out="$(target/release/examples/tight_loop "$spec" --min-seconds "$tight_seconds")"

sampo_ws=$(value walker_steps "$sampo_out")
emcee_ws=$(value walker_steps "$emcee_out")
tight_ws=$(value walker_steps "$tight_out")

awk \
    -v s_ws="$sampo_ws" -v s_wall="$(value wall_seconds "$sampo_out")" \
    -v s_task="$(value task_seconds "$sampo_out")" -v s_proc="$sampo_process" \
    -v s_acc="$(value acceptance "$sampo_out")" \
    -v s_thin="$(value task_seconds "$thin_out")" \
    -v e_ws="$emcee_ws" -v e_sec="$(value seconds "$emcee_out")" \
    -v e_acc="$(value acceptance "$emcee_out")" -v e_ver="$(tail -n 1 <<<"$emcee_out")" \
    -v t_ws="$tight_ws" -v t_sec="$(value seconds "$tight_out")" \
    -v t_acc="$(value acceptance "$tight_out")" \
    -v cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    'function row(name, ws, sec, acc) {
         printf "%-40s %12d %9.3f %15.3e %6s\n", name, ws, sec, ws / sec, acc
     }
     BEGIN {
         print "10-D correlated Gaussian, 64 walkers, stretch a = 2, one core"
         print "cpu: " cpu "; " e_ver
         print ""
         printf "%-40s %12s %9s %15s %6s\n", "", "walker-steps", "seconds", "walker-steps/s", "accept"
         row("sampo --threads 1 (wall_seconds)", s_ws, s_wall, s_acc)
         row("  sampling + storing only (/timings)", s_ws, s_task, "")
         row("  whole process", s_ws, s_proc, "")
         row("  thin = 100, sampling only (/timings)", s_ws, s_thin, "")
         row("emcee (vectorize=True, numpy)", e_ws, e_sec, e_acc)
         row("tight loop (examples/tight_loop.rs)", t_ws, t_sec, t_acc)
         s = s_ws / s_wall; s_task_rate = s_ws / s_task; s_thin_rate = s_ws / s_thin
         e = e_ws / e_sec; t = t_ws / t_sec
         print ""
         printf "sampo/emcee  %7.2f   (sampling + storing only: %.2f)\n", s / e, s_task_rate / e
         printf "tight/sampo  %7.2f   (sampling + storing only: %.2f; thin = 100: %.2f)\n", t / s, t / s_task_rate, t / s_thin_rate
     }'
echo
shares
startup
