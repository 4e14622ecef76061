#!/usr/bin/env bash
# kind = "batch": the engine's cost per item, and TEM1D next to pytem1d's
# multiprocessing pool. Not a test: figures for docs/benchmarks.md.
#
#   (a) the built-in decay model with one output (a few ns of arithmetic):
#       SAMPO_ITEMS (default 10⁶) items on 1 rank × 1 thread — wall time per
#       item is the engine's overhead (design point, chunking, records,
#       HDF5); then 10⁷ items on 2 ranks × 1 thread, with rank 0's peak RSS.
#   (b) TEM1D (examples/plugins/tem1d, built by scripts/fetch-tem1d.sh), the
#       three-layer study of configs/batch-tem1d.toml, SAMPO_MODELS (default
#       10⁴) models: sampo on 1 × 1, 1 rank × 2 threads with private copies
#       and 2 ranks × 1 thread; pytem1d.run_tem1d on the same models with a
#       pool of 1 and 2 worker processes in chunks of 500 (as the TEM1D
#       utilities do). Models/s, efficiency against sampo 1 × 1, and the
#       largest relative difference of pytem1d's answers from sampo's.
#
#   scripts/bench-batch.sh
#   SAMPO_ITEMS=100000 SAMPO_MODELS=2000 scripts/bench-batch.sh   # quicker
#
# Run on a quiet machine: the load average is printed before and after.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/env.sh
source scripts/env.sh
target="${CARGO_TARGET_DIR:-$repo/target}"
items="${SAMPO_ITEMS:-1000000}"
models="${SAMPO_MODELS:-10000}"
cargo build --release --quiet
bash scripts/python-env.sh >/dev/null
bash scripts/fetch-tem1d.sh >/dev/null
sampo="$target/release/sampo"
py="${SAMPO_VENV:-$repo/.venv}/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mpi=(mpiexec --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cat >"$work/trivial.toml" <<'SPEC'
[sampler]
kind = "batch"
design = { kind = "random" }
[[states]]
name = "decay"
params = ["amplitude", "tau"]
model = { kind = "decay", times = [1.0] }
prior = { kind = "uniform", low = [1.0, 0.5], high = [2.0, 3.0] }
SPEC

seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }

echo "== (a) engine overhead: built-in decay, one output"
t=$(seconds "$sampo" run "$work/trivial.toml" --set "sampler.items=$items" -o "$work/a.h5" -q --threads 1)
printf '1 rank × 1 thread   %9d items  %7.2f s  %6.3f µs/item\n' "$items" "$t" "$(echo "$t * 1000000 / $items" | bc -l)"
big=$((items * 10))
"${mpi[@]}" -n 1 /usr/bin/time -f "%M" -o "$work/rss" "$sampo" run "$work/trivial.toml" \
    --set "sampler.items=$big" -o "$work/b.h5" -q --threads 1 : -n 1 "$sampo" run "$work/trivial.toml" \
    --set "sampler.items=$big" -o "$work/b.h5" -q --threads 1 >/dev/null 2>&1 &
t0=$(date +%s.%N); wait $!; t1=$(date +%s.%N)
t=$(echo "$t1 - $t0" | bc -l)
printf '2 ranks × 1 thread  %9d items  %7.2f s  %6.3f µs/item  rank 0 peak RSS %d MB  file %s\n' \
    "$big" "$t" "$(echo "$t * 1000000 / $big" | bc -l)" "$(( $(tail -1 "$work/rss") / 1024 ))" \
    "$(du -h "$work/b.h5" | cut -f1)"

echo "== (b) TEM1D, $models three-layer models (71 gates)"
spec=configs/batch-tem1d.toml
set_models=(--set "sampler.items=$models" --set sampler.validate=0)
t11=$(seconds "$sampo" run "$spec" "${set_models[@]}" -o "$work/t11.h5" -q --threads 1)
t12=$(seconds "$sampo" run "$spec" "${set_models[@]}" --set states.0.model.copies=true -o "$work/t12.h5" -q --threads 2)
t21=$(seconds "${mpi[@]}" -n 2 "$sampo" run "$spec" "${set_models[@]}" -o "$work/t21.h5" -q --threads 1)
for f in t12 t21; do
    "$py" -c "import h5py, numpy as np, sys; a, b = (h5py.File(p)['batch/three-layer/outputs'][:] for p in sys.argv[1:]); sys.exit(0 if np.array_equal(a, b) else 1)" \
        "$work/t11.h5" "$work/$f.h5" || { echo "$f differs from 1 × 1"; exit 1; }
done
read -r p1 d1 < <("$py" scripts/bench_batch_pool.py "$work/t11.h5" 1)
read -r p2 d2 < <("$py" scripts/bench_batch_pool.py "$work/t11.h5" 2)
row() { printf '%-44s %7.2f s  %7.0f models/s  efficiency %.2f\n' "$1" "$2" "$(echo "$models / $2" | bc -l)" "$(echo "$t11 / ($3 * $2)" | bc -l)"; }
row "sampo 1 rank × 1 thread" "$t11" 1
row "sampo 1 rank × 2 threads (copies = true)" "$t12" 2
row "sampo 2 ranks × 1 thread" "$t21" 2
row "pytem1d, 1 process" "$p1" 1
row "pytem1d, Pool(2), chunks of 500" "$p2" 2
printf 'sampo 2 ranks / pytem1d Pool(2) throughput: %.2f×; 1 × 2 copies / Pool(2): %.2f×\n' \
    "$(echo "$p2 / $t21" | bc -l)" "$(echo "$p2 / $t12" | bc -l)"
echo "pytem1d against sampo's outputs: largest relative difference $d1 (1 process), $d2 (pool)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
