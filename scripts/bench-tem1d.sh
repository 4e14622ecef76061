#!/usr/bin/env bash
# Time per forward call of the TEM1D plugin (examples/plugins/tem1d), from C
# and through ctypes, against pytem1d.run_tem1d in Python, on the same 200
# three-layer earths. One core (taskset), PASSES passes over the models
# (default 5). Run on a quiet machine (the load average is printed).
#
#   bash scripts/bench-tem1d.sh [PASSES]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
passes="${1:-5}"
venv="${SAMPO_VENV:-$repo/.venv}"
bash scripts/fetch-tem1d.sh
out="$repo/target/tem1d"

# The C driver: what sampo does per point, nothing else.
cat >"$out/bench_forward.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "sampo.h"
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    int (*init)(const char *, size_t, const char *, void **, size_t *, char *, size_t) = dlsym(h, "sampo_init");
    int (*forward)(void *, const double *, size_t, double *, size_t) = dlsym(h, "sampo_forward");
    FILE *f = fopen(argv[2], "r");
    static double x[200][5], y[512];
    int n = 0;
    while (n < 200 && fscanf(f, "%lf %lf %lf %lf %lf", &x[n][0], &x[n][1], &x[n][2], &x[n][3], &x[n][4]) == 5) n++;
    fclose(f);
    int passes = atoi(argv[3]);
    void *ctx; size_t gates; char err[512];
    if (init("bench", 5, "{}", &ctx, &gates, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); return 1; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int p = 0; p < passes; p++)
        for (int i = 0; i < n; i++)
            if (forward(ctx, x[i], 5, y, gates) != 0) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.9f\n", (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec));
    return 0;
}
C
cc -O2 -I include -o "$out/bench_forward" "$out/bench_forward.c" -ldl

echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run=("$venv/bin/python" scripts/bench_tem1d.py "$out/bench_models.txt" "$out/bench_forward"
     "$repo/examples/plugins/tem1d/libsampo_tem1d.so" "$passes")
taskset -c 0 "${run[@]}" 2>/dev/null || "${run[@]}"
