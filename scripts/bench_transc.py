"""Reference problem A through pyTransC and through sampo, side by side.

Called by scripts/bench-transc.sh (which installs pyTransC from PyPI). Prints
each tool's state probabilities, the exact answer (0.56, 0.30, 0.14), the
wall times and their ratios:

1. the ensemble resampler alone, on *the same* inputs: sampo's stored
   per-state samples (after burn-in) with their log-posterior, and the
   log-density of sampo's fitted Gaussian pseudo-prior at each of them;
2. end to end: pyTransC's run_mcmc_per_state (emcee) + a Gaussian
   pseudo-prior + run_ensemble_resampler, against one `sampo run` doing the
   same (per-state ensembles, pseudo-priors, resampler), same sizes.
"""

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPO = os.environ.get("SAMPO_BIN", str(REPO / "target" / "release" / "sampo"))
SPEC = REPO / "configs" / "transc.toml"
EXACT = np.array([0.56, 0.30, 0.14])
WALKERS = int(os.environ.get("BENCH_WALKERS", "32"))
STEPS = int(os.environ.get("BENCH_STEPS", "100000"))
STAGE1_STEPS = int(os.environ.get("BENCH_STAGE1_STEPS", "3000"))


def shares(state_chain, burn):
    """Share of visits per state after burn-in, over all walkers, and the
    error across walkers."""
    s = np.asarray(state_chain)[:, burn:]
    per = np.array([[(row == k).mean() for k in range(3)] for row in s])
    return per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(len(per))


def gauss_logpdf(x, mean, cov):
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, (x - mean).T)
    return -0.5 * (z * z).sum(axis=0) - np.log(np.diag(L)).sum() - 0.5 * len(mean) * np.log(2 * np.pi)


def row(name, p, e, wall):
    ps = "  ".join(f"{v:.4f}±{w:.4f}" for v, w in zip(p, e))
    print(f"  {name:<38} {ps}   {wall:9.3f} s")


def main():
    import logging

    import pytransc

    logging.getLogger("pytransc").setLevel(logging.WARNING)
    from pytransc.samplers.ensemble_resampler import run_ensemble_resampler
    from pytransc.samplers.per_state import run_mcmc_per_state

    version = getattr(pytransc, "__version__", "?")
    spec = tomllib.loads(SPEC.read_text())
    states = spec["states"]
    dims = [len(s["model"]["mean"]) for s in states]
    out = Path(os.environ.get("BENCH_DIR", "/tmp")) / "bench-transc.h5"
    sets = [
        "--set", f"transc.walkers={WALKERS}", "--set", f"transc.steps={STEPS}",
        "--set", f"sampler.steps={STAGE1_STEPS}", "--set", 'transc.method="resample"',
    ]
    cmd = [SAMPO, "run", str(SPEC), "-q", "--threads", "1", "-o", str(out), "--force", *sets]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    sampo_wall = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        st, a, b = f["timings/stage"][...], f["timings/start"][...], f["timings/end"][...]
        stage2 = float((b[st == 1] - a[st == 1]).sum())
        sp, se = f["transc/probability"][...], f["transc/probability_err"][...]
        burn = int(f["transc"].attrs["burn"])
        logp, logq = [], []
        for s, d in zip(states, dims):
            g, q = f["states"][s["name"]], f["transc/pseudo_prior"][s["name"]]
            br = int(q.attrs["burn_rows"])
            x = g["chain"][br:].reshape(-1, d)
            logp.append(g["log_prob"][br:].reshape(-1))
            logq.append(gauss_logpdf(x, q["means"][0], q["covs"][0]))

    print(f"reference problem A, 3 states (dims {dims}); exact probabilities {EXACT.tolist()}")
    print(f"pyTransC {version}; sampo {SAMPO}; one thread each; {WALKERS} walkers × {STEPS} "
          f"resampler steps (burn {burn}); per-state stage {WALKERS} walkers × {STAGE1_STEPS} steps")
    print()
    print("1. ensemble resampler alone, on sampo's stored samples and pseudo-prior values")
    t0 = time.perf_counter()
    res = run_ensemble_resampler(WALKERS, STEPS, 3, dims, logp, logq, seed=1)
    py_resample = time.perf_counter() - t0
    pp, pe = shares(res.state_chain, burn)
    row("pyTransC run_ensemble_resampler", pp, pe, py_resample)
    row("sampo [transc] resample (stage 2)", sp, se, stage2)
    print(f"  ratio pyTransC / sampo: {py_resample / stage2:.0f}×")
    print()

    print("2. end to end: per-state MCMC, Gaussian pseudo-priors, resampler")
    lows = [np.array(s["prior"]["low"]) for s in states]
    highs = [np.array(s["prior"]["high"]) for s in states]
    means = [np.array(s["model"]["mean"]) for s in states]
    covs = [np.array(s["model"]["cov"]) for s in states]
    chols = [np.linalg.cholesky(c) for c in covs]
    norms = [-np.log(np.diag(L)).sum() - 0.5 * len(m) * np.log(2 * np.pi) for L, m in zip(chols, means)]
    log_vol = [np.log(h - l).sum() for l, h in zip(lows, highs)]

    def log_posterior(x, state):
        k = state
        if np.any(x < lows[k]) or np.any(x > highs[k]):
            return -np.inf
        z = np.linalg.solve(chols[k], x - means[k])
        return norms[k] - 0.5 * z @ z - log_vol[k]

    rng = np.random.default_rng(1)
    pos = [rng.uniform(l, h, size=(WALKERS, len(l))) for l, h in zip(lows, highs)]
    t0 = time.perf_counter()
    samples, lp_ens = run_mcmc_per_state(
        3, dims, WALKERS, STAGE1_STEPS, pos, log_posterior,
        discard=STAGE1_STEPS // 4, thin=1, verbose=False, seed=1,
    )
    lq_ens = []
    for x in samples:
        x = np.asarray(x)
        lq_ens.append(gauss_logpdf(x, x.mean(axis=0), np.cov(x.T, bias=True)))
    res = run_ensemble_resampler(WALKERS, STEPS, 3, dims, lp_ens, lq_ens, seed=1)
    py_total = time.perf_counter() - t0
    pp, pe = shares(res.state_chain, burn)
    row("pyTransC (emcee per state + resampler)", pp, pe, py_total)
    row("sampo run (whole run, HDF5 written)", sp, se, sampo_wall)
    print(f"  ratio pyTransC / sampo: {py_total / sampo_wall:.0f}×")
    print()
    print("errors: across walkers (sd of the walkers' shares / √walkers), both tools")


if __name__ == "__main__":
    sys.exit(main())
