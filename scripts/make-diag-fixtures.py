#!/usr/bin/env python3
# Reference values for sampo's convergence diagnostics (src/diag/vehtari.rs),
# computed by ArviZ on a fixed set of chains. To regenerate: make a venv with
# ArviZ (`python3 -m venv /tmp/arviz-venv && /tmp/arviz-venv/bin/pip install
# arviz numpy scipy`), run `/tmp/arviz-venv/bin/python
# scripts/make-diag-fixtures.py` from the repository root, which rewrites
# src/diag/fixtures/arviz.json, then `cargo test --release --lib diag`. The
# draws come from a fixed numpy seed and are stored in the JSON as they are
# (floats by repr, which round-trips exactly), so the Rust test does not
# depend on numpy's generator; only ArviZ's numbers change with its version,
# which is recorded in the file. Numba must not be installed in the venv:
# with it ArviZ computes variances by the one-pass sum of squares, whose
# rounding differs from numpy's (and from ours) for a tiny spread on a large
# offset.
import importlib.metadata
import json
import logging
import math
import platform
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)  # ArviZ 0.2x announces 1.0
import arviz as az  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "src" / "diag" / "fixtures" / "arviz.json"
PROBS = (0.05, 0.5, 0.95)


def ar1(rng, rho, chains, draws):
    x = np.empty((chains, draws))
    x[:, 0] = rng.standard_normal(chains) / math.sqrt(1 - rho * rho)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + rng.standard_normal(chains)
    return x


def cases():
    rng = np.random.default_rng(20240611)
    c = {}
    c["iid_normal"] = rng.standard_normal((4, 1000))
    c["ar1_rho09"] = ar1(rng, 0.9, 4, 2000)
    # Antithetic draws: ESS above the number of draws, the tau_hat floor.
    c["ar1_antithetic"] = ar1(rng, -0.6, 4, 500)
    c["shifted_means"] = rng.standard_normal((4, 500)) + np.array([[0.0], [0.5], [1.0], [4.0]])
    c["cauchy"] = rng.standard_cauchy((4, 500))
    c["odd_draws"] = ar1(rng, 0.5, 4, 101)
    c["one_chain"] = rng.standard_normal((1, 500))
    c["tiny"] = rng.standard_normal((2, 7))
    c["four_draws"] = rng.standard_normal((3, 4))
    c["three_draws"] = rng.standard_normal((2, 3))
    c["eight_chains"] = ar1(rng, 0.5, 8, 200)
    # Ties everywhere: average ranks.
    c["discrete"] = rng.integers(0, 5, (4, 200)).astype(float)
    c["constant"] = np.full((4, 100), 2.5)
    one_constant = rng.standard_normal((4, 100))
    one_constant[2, :] = 1.0
    c["one_constant_chain"] = one_constant
    # A parameter that barely moves: the means must round as numpy's do.
    c["tiny_noise"] = 1.0 + 1e-12 * rng.standard_normal((4, 500))
    with_nan = rng.standard_normal((4, 100))
    with_nan[1, 17] = np.nan
    c["with_nan"] = with_nan
    with_inf = rng.standard_normal((4, 100))
    with_inf[3, 50] = np.inf
    c["with_inf"] = with_inf
    return c


def scalar(f):
    """ArviZ's value as a float, or the error it raised."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = f()
        if hasattr(v, "to_array"):
            v = v.to_array().values
        return float(np.asarray(v).reshape(-1)[0])
    except Exception as e:  # noqa: BLE001 - recorded, the Rust test skips it
        return {"error": f"{type(e).__name__}: {e}"}


def number(v):
    """JSON has no NaN or infinities: those become strings."""
    if isinstance(v, dict):
        return v
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def reference(x):
    ref = {
        "rhat": lambda: az.rhat(x, method="rank"),
        "rhat_bulk": lambda: az.rhat(x, method="z_scale"),
        "rhat_tail": lambda: az.rhat(x, method="folded"),
        "ess_bulk": lambda: az.ess(x, method="bulk"),
        "ess_tail": lambda: az.ess(x, method="tail"),
        "ess_mean": lambda: az.ess(x, method="mean"),
        "mcse_mean": lambda: az.mcse(x, method="mean"),
        "mcse_sd": lambda: az.mcse(x, method="sd"),
    }
    for p in PROBS:
        tag = f"{round(100 * p):02d}"
        ref[f"ess_q{tag}"] = lambda p=p: az.ess(x, method="quantile", prob=p)
        ref[f"mcse_q{tag}"] = lambda p=p: az.mcse(x, method="quantile", prob=p)
    out = {k: number(scalar(f)) for k, f in ref.items()}

    # az.summary, as users see it: the mean-focused table, and the
    # median-focused one for the median and the 5% and 95% quantiles.
    def summary(**kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return az.summary({"x": x}, fmt="xarray", round_to="none", **kw)

    try:
        s = summary()
        for k in ("mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"):
            out[f"summary_{k}"] = number(float(s["x"].sel(metric=k).values))
    except Exception as e:  # noqa: BLE001
        out["summary_error"] = f"{type(e).__name__}: {e}"
    try:
        s = summary(stat_focus="median", hdi_prob=0.9)
        for k, name in (("median", "median"), ("eti_5%", "q05"), ("eti_95%", "q95")):
            out[f"summary_{name}"] = number(float(s["x"].sel(metric=k).values))
    except Exception as e:  # noqa: BLE001
        out["summary_median_error"] = f"{type(e).__name__}: {e}"
    return out


def main():
    from arviz.utils import Numba

    # ArviZ logs a warning for every degenerate case; they are the point here.
    az._log.setLevel(logging.ERROR)  # pylint: disable=protected-access

    if Numba.numba_flag:
        sys.exit("make-diag-fixtures: uninstall numba from this venv (see the comment at the top)")
    data = {
        "generator": "scripts/make-diag-fixtures.py",
        "versions": {
            "python": platform.python_version(),
            **{p: importlib.metadata.version(p) for p in ("arviz", "numpy", "scipy", "xarray")},
        },
        "cases": [],
    }
    # scipy's Beta quantiles (Boost's ibeta_inv) at ArviZ's two
    # probabilities, for ESS from 2 to 3e8: the shapes of the MCSE of a
    # quantile, where statrs's inverse alone is not accurate enough.
    from scipy import stats

    beta = []
    for ess in np.logspace(0.3, 8.5, 60):
        for prob in PROBS:
            a, b = ess * prob + 1, ess * (1 - prob) + 1
            for p in (0.1586553, 0.8413447):
                beta.append([p, float(a), float(b), float(stats.beta.ppf(p, a, b))])
    data["beta_ppf"] = beta
    for name, x in cases().items():
        case = {"name": name, "chains": [[number(float(v)) for v in row] for row in x]}
        case.update(reference(x))
        data["cases"].append(case)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line keeps diffs of a regenerated file readable.
    lines = ",\n".join(json.dumps(c, separators=(",", ":")) for c in data["cases"])
    head = json.dumps({k: v for k, v in data.items() if k != "cases"}, separators=(",", ":"))[:-1]
    OUT.write_text(f'{head},"cases":[\n{lines}\n]}}\n')
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
