#!/usr/bin/env bash
# kind = "paths" next to stochlab 0.1.1 (PyPI) on the same 3-state chain (the
# weather chain of configs/paths.toml, from "sun"), in paths·steps per second.
# Not a test: figures for docs/benchmarks.md.
#
#   (a) SAMPO_PATHS (default 20 000) paths × SAMPO_STEPS (default 50) steps:
#       stochlab's MonteCarloEngine.simulate sequential and with
#       parallel=True, n_jobs=2 (every path returned as a Path object, its
#       default mode); sampo on 1 rank × 1 thread, 1 rank × 2 threads and
#       2 ranks × 1 thread, record = "statistics". stochlab builds its chain
#       from the matrix, labels and start in sampo's output file, and its
#       distribution at the last step is compared with sampo's and with the
#       exact x0·Pᵀ (largest |difference| / standard error).
#   (b) SAMPO_BIG_PATHS (default 10⁶) × SAMPO_BIG_STEPS (default 1000) = 10⁹
#       path-steps, statistics every 100 steps: sampo only, same layouts.
#       stochlab is not run (at its rate in (a) it would take hours); set
#       SAMPO_STOCHLAB_BIG=1 to run its sequential case anyway.
#
# sampo's wall is the whole process (start-up, HDF5 file), stochlab's the
# simulate() call alone. Peak RSS (/usr/bin/time -f %M) is per sampo process;
# for 2 ranks the larger of the two. The 2-thread and 2-rank files must equal
# the 1-thread one bit for bit (occupation, statistics, quantiles).
#
#   scripts/bench-paths.sh
#   SAMPO_PATHS=2000 SAMPO_BIG_PATHS=100000 scripts/bench-paths.sh   # quicker
#
# Run on a quiet machine: the load average is printed before and after.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/env.sh
source scripts/env.sh
target="${CARGO_TARGET_DIR:-$repo/target}"
paths="${SAMPO_PATHS:-20000}"
steps="${SAMPO_STEPS:-50}"
big_paths="${SAMPO_BIG_PATHS:-1000000}"
big_steps="${SAMPO_BIG_STEPS:-1000}"
cargo build --release --quiet
bash scripts/python-env.sh >/dev/null
sampo="$target/release/sampo"
venv="${SAMPO_VENV:-$repo/.venv}"
py="$venv/bin/python"
# stochlab is pinned: the figures are for 0.1.1, the version issue 20 measured.
"$py" -c 'import stochlab, sys; sys.exit(stochlab.__version__ != "0.1.1")' 2>/dev/null ||
    "$py" -m pip --quiet --disable-pip-version-check --no-input install "stochlab==0.1.1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mpi=(mpiexec --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

spec() {  # paths steps every
    cat <<SPEC
[run]
seed = 2024
[sampler]
kind = "paths"
paths = $1
steps = $2
record = "statistics"
statistics = { every = $3 }
[[states]]
name = "weather"
process = { kind = "markov-chain", labels = ["sun", "cloud", "rain"], transition = [
    [0.5, 0.3, 0.2],
    [0.1, 0.6, 0.3],
    [0.4, 0.4, 0.2],
], x0 = "sun" }
SPEC
}

now() { date +%s.%N; }
# sampo LABEL SPEC: runs the three layouts, sets t1 t2 tr (s), m1 m2 mr (MB), w1 w2 wr (wall_seconds).
run_sampo() {
    local tag=$1 file=$2 t0
    t0=$(now); /usr/bin/time -f %M -o "$work/$tag.1.rss" "$sampo" run "$file" -o "$work/$tag.1.h5" -q --threads 1 >/dev/null 2>&1
    t1=$(echo "$(now) - $t0" | bc -l)
    t0=$(now); /usr/bin/time -f %M -o "$work/$tag.2.rss" "$sampo" run "$file" -o "$work/$tag.2.h5" -q --threads 2 >/dev/null 2>&1
    t2=$(echo "$(now) - $t0" | bc -l)
    t0=$(now)
    "${mpi[@]}" -n 1 /usr/bin/time -f %M -o "$work/$tag.r0.rss" "$sampo" run "$file" -o "$work/$tag.r.h5" -q --threads 1 : \
        -n 1 /usr/bin/time -f %M -o "$work/$tag.r1.rss" "$sampo" run "$file" -o "$work/$tag.r.h5" -q --threads 1 >/dev/null 2>&1
    tr=$(echo "$(now) - $t0" | bc -l)
    m1=$(( $(tail -1 "$work/$tag.1.rss") / 1024 ))
    m2=$(( $(tail -1 "$work/$tag.2.rss") / 1024 ))
    mr=$(( $(cat <(tail -1 "$work/$tag.r0.rss") <(tail -1 "$work/$tag.r1.rss") | sort -n | tail -1) / 1024 ))
    read -r w1 w2 wr < <("$py" - "$work/$tag.1.h5" "$work/$tag.2.h5" "$work/$tag.r.h5" <<'PY'
import sys, h5py, numpy as np
files = [h5py.File(p, "r") for p in sys.argv[1:]]
for f in files[1:]:
    for d in ("occupation", "statistics", "quantiles"):
        a, b = files[0][f"paths/weather/{d}"][:], f[f"paths/weather/{d}"][:]
        if not np.array_equal(a, b):
            sys.exit(f"{f.filename}: {d} differs from 1 rank × 1 thread")
print(*(f"{f.attrs['wall_seconds']:.3f}" for f in files))
PY
)
}

rate() { echo "$1 * $2 / $3" | bc -l; }
eff() { echo "$1 / ($2 * $3)" | bc -l; }
# srow LABEL PATHS STEPS WORKERS WALL RUN WALL1 RUN1 RSS: sampo, by process wall and by the run's wall_seconds.
srow() {
    printf '%-28s %8.3f s %9.3g /s  eff %4.2f | run %7.3f s %9.3g /s  eff %4.2f | peak RSS %4d MB\n' "$1" \
        "$5" "$(rate "$2" "$3" "$5")" "$(eff "$7" "$4" "$5")" "$6" "$(rate "$2" "$3" "$6")" "$(eff "$8" "$4" "$6")" "$9"
}
# prow LABEL PATHS STEPS WORKERS SECONDS SECONDS1 NOTE: stochlab's simulate().
prow() {
    printf '%-34s %8.3f s %9.3g /s  eff %4.2f | %s\n' "$1" "$5" "$(rate "$2" "$3" "$5")" "$(eff "$6" "$4" "$5")" "$7"
}
sampo_rows() {  # PATHS STEPS
    srow "sampo 1 rank × 1 thread" "$1" "$2" 1 "$t1" "$w1" "$t1" "$w1" "$m1"
    srow "sampo 1 rank × 2 threads" "$1" "$2" 2 "$t2" "$w2" "$t1" "$w1" "$m2"
    srow "sampo 2 ranks × 1 thread" "$1" "$2" 2 "$tr" "$wr" "$t1" "$w1" "$mr"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "stochlab $("$py" -c 'import stochlab; print(stochlab.__version__)'), $(nproc) cores"

echo "== (a) $paths paths × $steps steps"
spec "$paths" "$steps" 10 >"$work/a.toml"
run_sampo a "$work/a.toml"
read -r s1 z1 zx1 zs < <("$py" scripts/bench_paths_stochlab.py "$work/a.1.h5" "$paths" "$steps" 1 2024)
read -r s2 z2 zx2 _ < <("$py" scripts/bench_paths_stochlab.py "$work/a.1.h5" "$paths" "$steps" 2 2024)
a_t1=$t1 a_w1=$w1
echo "(paths·steps per second; sampo by process wall and by the run's own wall_seconds; efficiency T₁ / (2 × T₂))"
sampo_rows "$paths" "$steps"
prow "stochlab sequential" "$paths" "$steps" 1 "$s1" "$s1" "|stochlab − sampo| ≤ ${z1} se, |stochlab − exact| ≤ ${zx1} se"
prow "stochlab parallel=True, n_jobs=2" "$paths" "$steps" 2 "$s2" "$s1" "|stochlab − sampo| ≤ ${z2} se, |stochlab − exact| ≤ ${zx2} se"
echo "sampo against exact x0·Pᵀ at step $steps: |difference| ≤ $zs se"

echo "== (b) $big_paths paths × $big_steps steps"
spec "$big_paths" "$big_steps" 100 >"$work/b.toml"
run_sampo b "$work/b.toml"
sampo_rows "$big_paths" "$big_steps"
if [ "${SAMPO_STOCHLAB_BIG:-0}" = 1 ]; then
    read -r sb _ < <("$py" scripts/bench_paths_stochlab.py "$work/b.1.h5" "$big_paths" "$big_steps" 1 2024)
    prow "stochlab sequential" "$big_paths" "$big_steps" 1 "$sb" "$sb" ""
else
    printf 'stochlab not run at this size: at its sequential rate in (a) it would take about %.0f s\n' \
        "$(echo "$s1 * $big_paths * $big_steps / ($paths * $steps)" | bc -l)"
fi
printf 'sampo 1 thread / stochlab sequential, path-steps per second: (a) %.0f× (process), %.0f× (run); (b) against stochlab in (a): %.0f× (process), %.0f× (run)\n' \
    "$(echo "$s1 / $a_t1" | bc -l)" "$(echo "$s1 / $a_w1" | bc -l)" \
    "$(echo "($big_paths * $big_steps / $t1) / ($paths * $steps / $s1)" | bc -l)" \
    "$(echo "($big_paths * $big_steps / $w1) / ($paths * $steps / $s1)" | bc -l)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
