#!/usr/bin/env bash
# The per-call overhead of a plugin model (include/sampo.h) against the
# built-in model with the same arithmetic: a 2-D correlated Gaussian in C
# (examples/plugins/c/gaussian.c) against sampo's `gaussian`, through
# log_density and log_density_batch (64 points). Target: < 20 ns per call.
# One core, about 10 s. Run on a quiet machine (the load average is printed).
#
#   bash scripts/bench-plugin.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source=scripts/env.sh
source scripts/env.sh
make -s -C examples/plugins/c
cargo build --release --locked --quiet --example bench_plugin
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 0 target/release/examples/bench_plugin examples/plugins/c/libgaussian.so 2>/dev/null \
    || target/release/examples/bench_plugin examples/plugins/c/libgaussian.so
