"""Python models in sampo against emcee with the same Python function.

1. Per-call overhead: a 10-D Gaussian log-likelihood in Python, called by
   sampo's ensemble (64 walkers, one core) scalar and vectorised (32 points
   per call, a half-ensemble), minus the function's own time (timeit on the
   same arrays) and minus the same run with the built-in model.
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
MODEL = '''
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
'''


def spec(model, steps, walkers=WALKERS, states=1):
    text = f"[run]\nseed = 1\n[parallel]\nthreads = 1\n[sampler]\nwalkers = {walkers}\nsteps = {steps}\nthin = 10\n"
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


def main():
    steps = 4000
    evals = WALKERS * steps
    folder = Path(tempfile.mkdtemp(prefix="bench-python-"))
    (folder / "m.py").write_text(MODEL)
    sys.path.insert(0, str(folder))
    import m  # the same functions, for timeit and emcee

    eye = "[" + ", ".join("[" + ", ".join("1.0" if i == j else "0.0" for j in range(DIM)) + "]" for i in range(DIM)) + "]"
    builtin = f'model = {{ kind = "gaussian", mean = {[0.0] * DIM}, cov = {eye} }}'
    scalar = 'model = { kind = "python", file = "m.py", function = "gauss" }'
    vector = 'model = { kind = "python", file = "m.py", function = "gauss_many", vectorized = true }'

    x = np.random.default_rng(1).normal(size=DIM)
    xs = np.random.default_rng(2).normal(size=(WALKERS // 2, DIM))
    n = 200_000
    # The functions' own time: the best of five timeit repeats.
    own_scalar = min(timeit.repeat(lambda: m.gauss(x), number=n, repeat=5)) / n
    own_vector = min(timeit.repeat(lambda: m.gauss_many(xs), number=n // 10, repeat=5)) / (n // 10) / (WALKERS // 2)

    def best(model, n_steps):
        return min(sampo(folder, "run", spec(model, n_steps)) for _ in range(3))

    # Start-up (the interpreter, numpy's import, HDF5) from runs of 10
    # steps, so that the per-call figures are the calls'.
    t_builtin, t_scalar, t_vector = best(builtin, steps), best(scalar, steps), best(vector, steps)
    s_builtin, s_scalar, s_vector = best(builtin, 10), best(scalar, 10), best(vector, 10)
    per_scalar = ((t_scalar - s_scalar) - (t_builtin - s_builtin)) / (evals - WALKERS * 10)
    per_vector = ((t_vector - s_vector) - (t_builtin - s_builtin)) / (evals - WALKERS * 10)
    print(f"start-up (10 steps): built-in {s_builtin:.3f} s, Python scalar {s_scalar:.3f} s, vectorised {s_vector:.3f} s")
    print(f"evaluations per run: {evals} ({WALKERS} walkers x {steps} steps, {DIM}-D Gaussian, one core)")
    print(f"sampo, built-in model:         {t_builtin:7.3f} s")
    print(f"sampo, Python scalar:          {t_scalar:7.3f} s  ({per_scalar * 1e6:.2f} us per call, "
          f"of which the function itself {own_scalar * 1e6:.2f} us: overhead {(per_scalar - own_scalar) * 1e6:.2f} us)")
    print(f"sampo, Python vectorised (32): {t_vector:7.3f} s  ({per_vector * 1e9:.0f} ns per point, "
          f"of which the function itself {own_vector * 1e9:.0f} ns: overhead {(per_vector - own_vector) * 1e9:.0f} ns)")

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
    t1 = sampo(folder, "slow1", spec(slow, slow_steps, walkers=24, states=4))
    t2 = sampo(folder, "slow2", spec(slow, slow_steps, walkers=24, states=4), mpi=2)
    work = 4 * 24 * slow_steps * 1e-3
    print(f"1 ms Python likelihood, 4 states x 24 walkers x {slow_steps} steps ({work:.1f} s of calls):")
    print(f"  sampo 1 rank: {t1:.2f} s; mpiexec -n 2: {t2:.2f} s; efficiency {t1 / (2 * t2):.2f}")


if __name__ == "__main__":
    main()
