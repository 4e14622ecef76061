#!/usr/bin/env bash
# The whole test suite, as the README says: system libraries, a release build,
# Rust unit and integration tests (local and under mpiexec), and the Python
# client tests (h5py + emcee from PyPI in a local venv reading our output).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
source scripts/env.sh

cargo build --release --locked
# Before the Rust tests: tests/configs.rs checks every spec in configs/, and
# two of them need the venv (a Python model) and the TEM1D plugin.
bash scripts/python-env.sh
bash scripts/fetch-tem1d.sh
cargo test --release --locked

SAMPO_BIN="$PWD/target/release/sampo" "${SAMPO_VENV:-$PWD/.venv}/bin/python" -m pytest -q tests/python
