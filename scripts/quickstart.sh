#!/usr/bin/env bash
# Builds sampo and runs the quickstart spec, writing quickstart.h5 here.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
source scripts/env.sh

cargo build --release --locked
./target/release/sampo check configs/quickstart.toml
./target/release/sampo run configs/quickstart.toml --force
