"""Python models in sampo against emcee with the same Python function.

1. Per-call overhead: a 10-D Gaussian log-likelihood in Python, called by
   sampo's ensemble (64 walkers, one core) scalar and vectorised (32 points
   per call, a half-ensemble), against the same run with a C plugin of the
   same arithmetic (the baseline: sampling, storing and diagnostics, and a
   call that costs a few ns). The difference per call, less the Python
   function's own time (timeit on one array), is sampo's overhead. These
   runs keep every 1000th step, so that storage and the end-of-run
   diagnostics (whose cost depends on the draws) stay out of the
   difference; they alternate, and each figure is the best of several,
   because this machine's speed wanders from run to run.
2. emcee 3 with the same function (scalar, and vectorize=True), one core,
   the same walkers and steps: wall time of the whole run.
3. A 1 ms Python likelihood (a busy loop): sampo on 1 rank and under
   `mpiexec -n 2`, and the parallel efficiency t1 / (2 t2).

Run by scripts/bench-python.sh (which builds sampo and makes the venv).
"""

import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPO = os.environ.get("SAMPO_BIN", str(REPO / "target" / "release" / "sampo"))
ENV = dict(os.environ, VIRTUAL_ENV=sys.prefix)
if os.geteuid() == 0:
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

DIM, WALKERS = 10, 64
MODEL = """
import time
import numpy as np

def gauss(theta):
    return -0.5 * float(theta @ theta)

def gauss_many(thetas):
    return -0.5 * np.einsum("ij,ij->i", thetas, thetas)

def slow(theta):
    end = time.perf_counter() + 1e-3
    while time.perf_counter() < end:
        pass
    return -0.5 * float(theta @ theta)
"""

# The same arithmetic as gauss and gauss_many in C, through sampo's plugin
# interface (include/sampo.h); built with and without the batch entry point.
PLUGIN = """
#include <sampo.h>
int sampo_abi_version(void) { return SAMPO_ABI_VERSION; }
int sampo_thread_safety(void) { return SAMPO_SHARED; }
int sampo_init(const char *state, size_t dim, const char *config, void **ctx,
               size_t *n_outputs, char *err, size_t err_len) {
    (void)state; (void)dim; (void)config; (void)err; (void)err_len;
    *ctx = 0; *n_outputs = 0;
    return SAMPO_OK;
}
void sampo_free(void *ctx) { (void)ctx; }
int sampo_log_density(void *ctx, const double *x, size_t dim, double *out) {
    (void)ctx;
    double s = 0.0;
    for (size_t j = 0; j < dim; j++) s += x[j] * x[j];
    *out = -0.5 * s;
    return SAMPO_OK;
}
#ifdef BATCH
int sampo_log_density_batch(void *ctx, const double *x, size_t n, size_t dim, double *out) {
    for (size_t i = 0; i < n; i++) sampo_log_density(ctx, x + i * dim, dim, out + i);
    return SAMPO_OK;
}
#endif
"""


def spec(model, steps, walkers=WALKERS, states=1, thin=10):
    text = f"[run]\nseed = 1\n[parallel]\nthreads = 1\n[sampler]\nwalkers = {walkers}\nsteps = {steps}\nthin = {thin}\n"
    low, high = [-10.0] * DIM, [10.0] * DIM
    for s in range(states):
        text += f'[[states]]\nname = "s{s}"\n{model}\nprior = {{ kind = "uniform", low = {low}, high = {high} }}\n'
    return text


def sampo(folder, name, text, mpi=0):
    (folder / f"{name}.toml").write_text(text)
    cmd = [SAMPO, "run", f"{name}.toml", "-q", "--force", "-o", f"{name}.h5"]
    if mpi:
        cmd = ["mpiexec", "--oversubscribe", "--bind-to", "none", "-n", str(mpi)] + cmd
    start = time.perf_counter()
    subprocess.run(cmd, cwd=folder, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def per_point(folder, models, steps, repeats, own):
    """Each model's cost a point: the best wall time of its run of `steps`
    less the best of a run of 10 steps (the start-up: the interpreter and
    numpy's import for Python); and the Python function's own time a point
    (`own()`, timeit). The runs and the timeits alternate."""
    best = {(name, n): float("inf") for name in models for n in (10, steps)}
    own_best = float("inf")
    for _ in range(repeats):
        for (name, n) in best:
            best[name, n] = min(best[name, n], sampo(folder, name, spec(models[name], n, thin=min(n, 1000))))
        own_best = min(own_best, own())
    cost = {name: (best[name, steps] - best[name, 10]) / (WALKERS * (steps - 10)) for name in models}
    return cost, best, own_best


def main():
    folder = Path(tempfile.mkdtemp(prefix="bench-python-"))
    (folder / "m.py").write_text(MODEL)
    (folder / "plugin.c").write_text(PLUGIN)
    for lib, flags in (("libscalar.so", []), ("libbatch.so", ["-DBATCH"])):
        subprocess.run(["cc", "-O2", "-fPIC", "-shared", *flags, f"-I{REPO / 'include'}", "-o", lib, "plugin.c"],
                       cwd=folder, check=True)
    sys.path.insert(0, str(folder))
    import m  # the same functions, for timeit and emcee

    x = np.random.default_rng(1).normal(size=DIM)
    xs = np.random.default_rng(2).normal(size=(WALKERS // 2, DIM))
    n = 200_000
    # The functions' own time a point: timeit of the bare call `f(x)` on one
    # array (a direct call in timeit's loop, nothing around it).
    def own_scalar():
        return min(timeit.repeat("f(x)", globals={"f": m.gauss, "x": x}, number=n, repeat=2)) / n

    def own_vector():
        t = min(timeit.repeat("f(x)", globals={"f": m.gauss_many, "x": xs}, number=n // 10, repeat=2))
        return t / (n // 10) / (WALKERS // 2)

    def python(function, vectorized):
        return f'model = {{ kind = "python", file = "m.py", function = "{function}", vectorized = {vectorized} }}'

    # Scalar: one call a point, 640 000 calls a run.
    s_steps = 10_000
    s, s_runs, own_scalar = per_point(folder, {"c": 'model = { kind = "plugin", library = "libscalar.so" }',
                                   "python": python("gauss", "false")}, s_steps, 5, own_scalar)
    # Vectorised: one call a half-ensemble, 2.56 million points a run.
    v_steps = 40_000
    v, v_runs, own_vector = per_point(folder, {"c": 'model = { kind = "plugin", library = "libbatch.so" }',
                                   "python": python("gauss_many", "true")}, v_steps, 7, own_vector)
    per_scalar = s["python"] - s["c"]
    per_vector = v["python"] - v["c"]
    print(f"{DIM}-D Gaussian, {WALKERS} walkers, one core; best of the alternating runs against a C plugin "
          "with the same arithmetic:")
    print(f"scalar, {s_steps} steps: C {s_runs['c', s_steps]:.3f} s (10 steps {s_runs['c', 10]:.3f} s), Python "
          f"{s_runs['python', s_steps]:.3f} s ({s_runs['python', 10]:.3f} s): {per_scalar * 1e6:.2f} us more "
          f"a call, of which the function itself {own_scalar * 1e6:.2f} us: overhead "
          f"{(per_scalar - own_scalar) * 1e6:.2f} us a call")
    print(f"vectorised (32 points a call), {v_steps} steps: C {v_runs['c', v_steps]:.3f} s ({v_runs['c', 10]:.3f} s), "
          f"Python {v_runs['python', v_steps]:.3f} s ({v_runs['python', 10]:.3f} s): "
          f"{per_vector * 1e9:.0f} ns more a point, of which the function itself {own_vector * 1e9:.0f} ns: "
          f"overhead {(per_vector - own_vector) * 1e9:.0f} ns a point")
    steps = 4000
    whole = {name: min(sampo(folder, name, spec(model, steps)) for _ in range(3))
             for name, model in (("scalar", python("gauss", "false")), ("vector", python("gauss_many", "true")))}
    t_scalar, t_vector = whole["scalar"], whole["vector"]
    print(f"whole runs of {steps} steps (start-up included): Python scalar {t_scalar:.3f} s, "
          f"vectorised {t_vector:.3f} s")

    import emcee

    p0 = np.random.default_rng(3).uniform(-1, 1, size=(WALKERS, DIM))

    def prior_gauss(theta):
        if np.any(np.abs(theta) > 10):
            return -np.inf
        return m.gauss(theta)

    def prior_many(thetas):
        out = m.gauss_many(thetas)
        out[np.any(np.abs(thetas) > 10, axis=1)] = -np.inf
        return out

    def emcee_time(f, vectorize):
        s = emcee.EnsembleSampler(WALKERS, DIM, f, vectorize=vectorize)
        start = time.perf_counter()
        s.run_mcmc(p0, steps, thin_by=1, progress=False)
        return time.perf_counter() - start

    e_scalar = emcee_time(prior_gauss, False)
    e_vector = emcee_time(prior_many, True)
    print(f"emcee {emcee.__version__}, scalar:          {e_scalar:7.3f} s  (sampo {e_scalar / t_scalar:.2f}x faster)")
    print(f"emcee {emcee.__version__}, vectorize=True:  {e_vector:7.3f} s  (sampo {e_vector / t_vector:.2f}x faster)")

    slow = 'model = { kind = "python", file = "m.py", function = "slow" }'
    slow_steps = 150
    text = spec(slow, slow_steps, walkers=24, states=4)
    t1 = min(sampo(folder, "slow1", text) for _ in range(2))
    t2 = min(sampo(folder, "slow2", text, mpi=2) for _ in range(2))
    work = 4 * 24 * slow_steps * 1e-3
    print(f"1 ms Python likelihood, 4 states x 24 walkers x {slow_steps} steps ({work:.1f} s of calls):")
    print(f"  sampo 1 rank: {t1:.2f} s; mpiexec -n 2: {t2:.2f} s; efficiency {t1 / (2 * t2):.2f} "
          "(whole processes: the launch and each rank's interpreter start-up included)")
    # The same runs by their own clock: first task's start to last task's end.
    import h5py

    def span(name):
        with h5py.File(folder / f"{name}.h5", "r") as f:
            return float(f["timings/end"][:].max() - f["timings/start"][:].min())

    s1, s2 = span("slow1"), span("slow2")
    print(f"  tasks only (/timings): 1 rank {s1:.2f} s; 2 ranks {s2:.2f} s; efficiency {s1 / (2 * s2):.2f}")


if __name__ == "__main__":
    main()
