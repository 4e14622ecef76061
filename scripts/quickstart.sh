#!/usr/bin/env bash
# Builds sampo, installs its man pages (scripts/install-man.sh: `man sampo`,
# `man sampo-run`, ...) and runs the quickstart spec, writing quickstart.h5 here.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
source scripts/env.sh

cargo build --release --locked
bash scripts/install-man.sh ./target/release/sampo
./target/release/sampo check configs/quickstart.toml
./target/release/sampo run configs/quickstart.toml --force
