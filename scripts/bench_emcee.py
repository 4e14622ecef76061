"""Helpers of scripts/bench-ensemble.sh: the benchmark problem, the emcee run,
and the timings read back from sampo's output.

    python bench_emcee.py problem SPEC.toml --steps N     # write the run spec
    python bench_emcee.py emcee SPEC.toml --min-seconds 5  # time emcee on it
    python bench_emcee.py sampo-times OUT.h5               # sampo's own clocks

The spec written by `problem` is the single description of the problem: sampo
runs it, and the emcee run and examples/tight_loop.rs read their mean,
covariance, prior box, walkers and stretch scale from it. Results are printed
as `key=value` lines for the shell script to parse.
"""

import argparse
import math
import sys
import time
import tomllib

import numpy as np

DIM = 10
WALKERS = 64
STRETCH_A = 2.0
PRIOR_HALF_WIDTH = 100.0
PROBLEM_SEED = 20240611


def toml_list(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def write_problem(path, steps):
    """A 10-D Gaussian with covariance R diag(σ²) Rᵀ for a fixed random rotation
    R, a mean away from the origin, and a wide uniform prior box."""
    rng = np.random.default_rng(PROBLEM_SEED)
    q, r = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    rotation = q * np.sign(np.diag(r))  # a proper random orthogonal matrix
    sigma = np.geomspace(0.1, 3.0, DIM)
    cov = rotation @ np.diag(sigma**2) @ rotation.T
    cov = 0.5 * (cov + cov.T)  # exactly symmetric, as sampo checks
    mean = rng.uniform(-2.0, 2.0, DIM)
    low = np.full(DIM, -PRIOR_HALF_WIDTH)
    high = np.full(DIM, PRIOR_HALF_WIDTH)
    # Start every sampler from the same kind of ball: mean ± the marginal sds.
    radius = np.sqrt(np.diag(cov))
    cov_rows = ",\n    ".join(toml_list(row) for row in cov)
    params = ", ".join(f'"x{i}"' for i in range(DIM))
    text = f"""\
# Written by scripts/bench_emcee.py for scripts/bench-ensemble.sh.
[run]
name = "bench-ensemble"
seed = 1

[parallel]
threads = 1

[sampler]
kind = "ensemble"
walkers = {WALKERS}
steps = {steps}
burn = 0
thin = 1
moves = [{{ kind = "stretch", a = {STRETCH_A!r}, weight = 1.0 }}]
init = {{ kind = "ball", center = {toml_list(mean)}, radius = {toml_list(radius)} }}

[[states]]
name = "gauss10"
params = [{params}]
model = {{ kind = "gaussian", mean = {toml_list(mean)}, cov = [
    {cov_rows}
] }}
prior = {{ kind = "uniform", low = {toml_list(low)}, high = {toml_list(high)} }}
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read_problem(path):
    with open(path, "rb") as f:
        spec = tomllib.load(f)
    sampler = spec["sampler"]
    state = spec["states"][0]
    (move,) = sampler["moves"]
    assert move["kind"] == "stretch"
    return {
        "walkers": sampler["walkers"],
        "a": move["a"],
        "center": np.array(sampler["init"]["center"]),
        "radius": np.array(sampler["init"]["radius"]),
        "mean": np.array(state["model"]["mean"]),
        "cov": np.array(state["model"]["cov"]),
        "low": np.array(state["prior"]["low"]),
        "high": np.array(state["prior"]["high"]),
    }


class VectorLogProb:
    """log N(x; μ, Σ) + log U(x; box) for a batch of walkers (rows), with the
    same arithmetic as sampo: W = L⁻¹ from the Cholesky factor, |W (x − μ)|²."""

    def __init__(self, p):
        d = len(p["mean"])
        chol = np.linalg.cholesky(p["cov"])
        self.w_t = np.linalg.inv(chol).T  # right-multiply rows: (x − μ) Wᵀ
        self.mean = p["mean"]
        self.low, self.high = p["low"], p["high"]
        log_det = 2.0 * np.sum(np.log(np.diag(chol)))
        self.const = -0.5 * (d * math.log(2 * math.pi) + log_det) - np.sum(np.log(self.high - self.low))

    def __call__(self, x):
        z = (x - self.mean) @ self.w_t
        lp = self.const - 0.5 * np.einsum("ij,ij->i", z, z)
        inside = np.all((x >= self.low) & (x <= self.high), axis=1)
        return np.where(inside, lp, -np.inf)


def run_emcee(spec_path, min_seconds):
    import emcee

    p = read_problem(spec_path)
    n, d = p["walkers"], len(p["mean"])
    log_prob = VectorLogProb(p)
    rng = np.random.default_rng(1)
    start = p["center"] + p["radius"] * rng.standard_normal((n, d))

    def timed(steps, seed):
        np.random.seed(seed)  # emcee's generator is copied from numpy's global one
        sampler = emcee.EnsembleSampler(n, d, log_prob, vectorize=True, moves=emcee.moves.StretchMove(a=p["a"]))
        t0 = time.perf_counter()
        sampler.run_mcmc(start, steps, progress=False)
        return time.perf_counter() - t0, sampler

    # A short calibration run sizes the timed one to take ~20% over the minimum.
    steps = 300
    seconds, _ = timed(steps, 0)
    while True:
        steps = max(steps, math.ceil(1.2 * min_seconds / seconds * steps))
        seconds, sampler = timed(steps, 1)
        if seconds >= min_seconds:
            break
    chain = sampler.get_chain(flat=True)
    print(f"walker_steps={n * steps}")
    print(f"steps={steps}")
    print(f"seconds={seconds:.6f}")
    print(f"acceptance={np.mean(sampler.acceptance_fraction):.4f}")
    # A sanity check that emcee sampled the same target: the worst deviation of
    # the chain mean from μ, in marginal sds (small: burn-in is short here).
    dev = np.max(np.abs(chain.mean(axis=0) - p["mean"]) / np.sqrt(np.diag(p["cov"])))
    print(f"max_mean_dev_sd={dev:.3f}")
    print(f"numpy={np.__version__} emcee={emcee.__version__}")


def sampo_times(path):
    import h5py

    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete", f.attrs["status"]
        g = f["states/gauss10"]
        # Iterations run, from the spec: `iteration` counts stored rows only.
        steps = tomllib.loads(f.attrs["spec"])["sampler"]["steps"]
        print(f"walker_steps={steps * int(g.attrs['nwalkers'])}")
        print(f"wall_seconds={float(f.attrs['wall_seconds']):.6f}")
        # Sampling and streaming the chain to the file, without the summary.
        print(f"task_seconds={float(np.max(f['timings/end'][...] - f['timings/start'][...])):.6f}")
        # The /summary table (a row per parameter, all with the state's acceptance).
        print(f"acceptance={float(f['summary/acceptance'][0]):.4f}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("problem", help="write the benchmark's run spec")
    a.add_argument("spec")
    a.add_argument("--steps", type=int, required=True)
    a = sub.add_parser("emcee", help="time emcee on the spec's problem")
    a.add_argument("spec")
    a.add_argument("--min-seconds", type=float, default=5.0)
    a = sub.add_parser("sampo-times", help="read the timings of a sampo output")
    a.add_argument("output")
    args = ap.parse_args(argv)
    if args.command == "problem":
        write_problem(args.spec, args.steps)
    elif args.command == "emcee":
        run_emcee(args.spec, args.min_seconds)
    else:
        sampo_times(args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
