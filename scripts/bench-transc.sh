#!/usr/bin/env bash
# Reference problem A through pyTransC (from PyPI) and through sampo, side by
# side: the ensemble resampler on the same inputs, and end to end. Prints both
# answers, the exact one, the wall times and their ratios (see
# scripts/bench_transc.py). Not a test: figures for docs/benchmarks.md.
#
#   bash scripts/bench-transc.sh
#   BENCH_STEPS=10000 bash scripts/bench-transc.sh     # a quicker look
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --quiet
bash scripts/python-env.sh
venv="${SAMPO_VENV:-$PWD/.venv}"
# pyTransC is published as pre-releases only (0.3.0a2 at the time of writing).
"$venv/bin/python" -c "import pytransc" 2>/dev/null \
    || "$venv/bin/pip" install --quiet --pre "pytransc>=0.3.0a2"
SAMPO_BIN="$PWD/target/release/sampo" "$venv/bin/python" scripts/bench_transc.py
