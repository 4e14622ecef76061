#!/usr/bin/env bash
# Python models: sampo's per-call overhead (scalar and vectorised), the same
# function under emcee on one core, and a 1 ms likelihood on 1 and 2 ranks
# (scripts/bench_python.py says what each line measures). About a minute.
#
#   bash scripts/bench-python.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo build --release --locked --quiet
bash scripts/python-env.sh
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"${SAMPO_VENV:-$repo/.venv}/bin/python" scripts/bench_python.py
