#!/usr/bin/env bash
# The smc kind next to dynesty (from PyPI, its defaults) on one 10-D problem
# with a closed-form evidence, and sampo's parallel efficiency at 2 ranks and
# at 2 threads with a 1 ms likelihood. Not a test: figures for docs/benchmarks.md.
#
#   (a) a Gaussian likelihood N(0.5·1, 0.1² I) in the uniform box [0, 1]^10,
#       so log Z = log 1 = 0 up to the mass outside the box (< 1e-6). sampo:
#       kind = "smc", SAMPO_PARTICLES (default 1000) particles in its default
#       8 groups, --threads 1; dynesty: NestedSampler defaults, one process.
#       SAMPO_SEEDS (default 5) seeds of each from SAMPO_SEED: per run log Z ±
#       error, |log Z − exact|, likelihood evaluations, wall seconds; then the
#       means, the rms of the actual error and the ratios.
#   (b) the 2-D Gaussian of configs/smc.toml with cost_us = 1000 and 200
#       particles: wall time at 1 rank × 1 thread, 1 × 2 threads and 2 ranks
#       × 1 thread; efficiency = T(1×1) / (2 T(layout)).
#
#   scripts/bench-smc.sh
#   SAMPO_VENV=/tmp/venv SAMPO_SEED=2 SAMPO_SEEDS=10 scripts/bench-smc.sh
#
# Run on a quiet machine: the load average is printed before and after.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/env.sh
source scripts/env.sh
target="${CARGO_TARGET_DIR:-$repo/target}"
venv="${SAMPO_VENV:-$repo/.venv}"
seed="${SAMPO_SEED:-1}"
particles="${SAMPO_PARTICLES:-1000}"
seeds="${SAMPO_SEEDS:-5}"
cargo build --release --quiet
sampo="$target/release/sampo"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import dynesty, h5py" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "numpy>=1.24" "h5py>=3.8" "dynesty>=2.1"
fi
py="$venv/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

dim=10
ones() { "$py" -c "print([$1] * $dim)"; }
cov="$("$py" -c "print([[0.01 if i == j else 0.0 for j in range($dim)] for i in range($dim)])")"
cat >"$work/ten.toml" <<TOML
[run]
seed = $seed
[sampler]
kind = "smc"
particles = $particles
[[states]]
name = "ten"
model = { kind = "gaussian", mean = $(ones 0.5), cov = $cov }
prior = { kind = "uniform", low = $(ones 0.0), high = $(ones 1.0) }
TOML

# Reads log Z, its error, evaluations and wall seconds of a sampo output.
read_h5() {
    "$py" - "$1" <<'PY'
import json, sys, h5py
f = h5py.File(sys.argv[1], "r")
g = f["smc/ten"] if "smc/ten" in f else f["smc/g"]
print(json.dumps({
    "log_z": float(g.attrs["log_evidence"]),
    "log_z_err": float(g.attrs["log_evidence_err"]),
    "evaluations": int(f["timings/evaluations"][:].sum()),
    "wall": float(f.attrs["wall_seconds"]),
}))
PY
}

# Several seeds of each: the reported error next to the actual one.
: >"$work/sampo.jsonl"
: >"$work/dynesty.jsonl"
for k in $(seq 0 $((seeds - 1))); do
    "$sampo" run "$work/ten.toml" -q --threads 1 --set "run.seed=$((seed + k))" -o "$work/ten$k.h5"
    read_h5 "$work/ten$k.h5" >>"$work/sampo.jsonl"
    "$py" scripts/bench_smc_dynesty.py $dim 0.5 0.1 0.0 1.0 "$((seed + k))" >>"$work/dynesty.jsonl"
done
"$py" - "$work" <<'PY'
import json, sys
import numpy as np
exact = 0.0
runs = {name: [json.loads(l) for l in open(f"{sys.argv[1]}/{name}.jsonl")] for name in ["sampo", "dynesty"]}
print(f"(a) 10-D Gaussian in [0,1]^10, exact log Z = {exact}, {len(runs['sampo'])} seeds each")
print(f"{'':10} {'seed':>4} {'log Z':>10} {'± err':>8} {'|error|':>8} {'evals':>10} {'wall s':>8}")
summary = {}
for name, rs in runs.items():
    for k, r in enumerate(rs):
        print(f"{name:10} {k:4d} {r['log_z']:10.4f} {r['log_z_err']:8.4f} {abs(r['log_z'] - exact):8.4f} "
              f"{r['evaluations']:10d} {r['wall']:8.3f}")
    summary[name] = {
        "err": np.mean([r["log_z_err"] for r in rs]),
        "rms": np.sqrt(np.mean([(r["log_z"] - exact) ** 2 for r in rs])),
        "evals": np.mean([r["evaluations"] for r in rs]),
        "wall": np.mean([r["wall"] for r in rs]),
    }
print(f"{'':10} {'mean ± err':>15} {'rms |error|':>12} {'evals':>10} {'wall s':>8}")
for name, m in summary.items():
    print(f"{name:10} {m['err']:15.4f} {m['rms']:12.4f} {m['evals']:10.0f} {m['wall']:8.3f}")
s, d = summary["sampo"], summary["dynesty"]
print(f"dynesty / sampo: wall {d['wall'] / s['wall']:.1f}x, evaluations {d['evals'] / s['evals']:.2f}x, "
      f"reported error {d['err'] / s['err']:.2f}x, actual (rms) error {d['rms'] / s['rms']:.2f}x")
PY

sed -e 's/particles = 1000/particles = 200/' configs/smc.toml >"$work/cost.toml"
echo 'cost_us = 1000' >>"$work/cost.toml"
"$sampo" run "$work/cost.toml" -q --threads 1 -o "$work/c11.h5"
"$sampo" run "$work/cost.toml" -q --threads 2 -o "$work/c12.h5"
root=(); if [ "$(id -u)" = 0 ]; then root=(--allow-run-as-root); fi
mpiexec --oversubscribe --bind-to none "${root[@]}" -n 2 \
    "$sampo" run "$work/cost.toml" -q --threads 1 -o "$work/c21.h5"
"$py" - "$work" <<'PY'
import sys, h5py
w = {k: float(h5py.File(f"{sys.argv[1]}/{k}.h5", "r").attrs["wall_seconds"]) for k in ["c11", "c12", "c21"]}
print("(b) 2-D Gaussian, cost_us = 1000, 200 particles")
print(f"1 rank × 1 thread  {w['c11']:.2f} s")
print(f"1 rank × 2 threads {w['c12']:.2f} s  efficiency {w['c11'] / (2 * w['c12']):.2f}")
print(f"2 ranks × 1 thread {w['c21']:.2f} s  efficiency {w['c11'] / (2 * w['c21']):.2f}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
