"""sampo's output read by ArviZ, and sampo's `/summary` checked against
``az.summary`` on the same draws.

The ensemble's groups go through ``az.from_emcee`` (emcee's HDFBackend, the
walkers taken as chains, as sampo's ensemble summary takes them); the chains
kind's through ``az.from_dict`` from plain h5py arrays (axis 1 = chain).
Both summaries are computed after the burn-in recorded in the file
(``burn_rows``), so the numbers must agree to rounding.
"""

import os
import subprocess
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

warnings.filterwarnings("ignore", category=FutureWarning)  # ArviZ 0.2x announces 1.0
import arviz as az  # noqa: E402
import emcee  # noqa: E402
from specs import TWO_STATES  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))

ENSEMBLE = """
[run]
name = "arviz-ensemble"
seed = 11
[sampler]
kind = "ensemble"
walkers = 16
steps = 1500
burn = 300
thin = 2
""" + TWO_STATES

CHAINS = """
[run]
name = "arviz-chains"
seed = 12
[sampler]
kind = "chains"
chains = 4
steps = 3000
burn = 1000
thin = 1
""" + TWO_STATES

# Our name → az.summary's metric.
METRICS = {
    "mean": "mean",
    "sd": "sd",
    "mcse_mean": "mcse_mean",
    "ess_bulk": "ess_bulk",
    "ess_tail": "ess_tail",
    "rhat": "r_hat",
}
QUANTILES = {"q05": "eti_5%", "q50": "median", "q95": "eti_95%"}


def run(tmp_path, text, name):
    spec = tmp_path / f"{name}.toml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / f"{name}.h5"
    cmd = [str(SAMPO_BIN), "run", str(spec), "-o", str(out), "--quiet", "--threads", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def ours(path, state):
    with h5py.File(path, "r") as f:
        t = f["summary"]
        rows = t["state"].asstr()[...] == state
        return {k: t[k][...][rows] for k in t.keys()}, list(t.attrs["columns"])


def reference(data, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main = az.summary(data, var_names=params, fmt="xarray", round_to="none")
        median = az.summary(
            data, var_names=params, fmt="xarray", round_to="none",
            stat_focus="median", hdi_prob=0.9,
        )
    return main, median


def assert_agrees(table, main, median, params):
    for k, p in enumerate(params):
        assert table["param"][k].decode() == p
        for name, metric in METRICS.items():
            want = float(main[p].sel(metric=metric).values)
            np.testing.assert_allclose(table[name][k], want, rtol=1e-8, err_msg=f"{p} {name}")
        for name, metric in QUANTILES.items():
            want = float(median[p].sel(metric=metric).values)
            np.testing.assert_allclose(table[name][k], want, rtol=1e-10, err_msg=f"{p} {name}")


@pytest.mark.parametrize("state", ["g", "funnel"])
def test_ensemble_summary_is_arviz_on_the_walkers(tmp_path, state):
    path = run(tmp_path, ENSEMBLE, "ens")
    table, columns = ours(path, state)
    assert columns[:3] == ["mean", "sd", "mcse_mean"]
    backend = emcee.backends.HDFBackend(str(path), name=f"states/{state}", read_only=True)
    with h5py.File(path, "r") as f:
        group = f["states"][state]
        params = list(group.attrs["params"])
        burn_rows = int(group.attrs["burn_rows"])
    assert burn_rows == 150  # burn 300 steps at thin 2
    idata = az.from_emcee(backend, var_names=params)
    assert idata.posterior.sizes["chain"] == 16  # the walkers
    idata = idata.sel(draw=slice(burn_rows, None))
    assert idata.posterior.sizes["draw"] == 750 - burn_rows
    main, median = reference(idata, params)
    assert_agrees(table, main, median, params)


def test_chains_summary_is_arviz_on_the_chains(tmp_path):
    path = run(tmp_path, CHAINS, "chains")
    for state in ["g", "funnel"]:
        table, _ = ours(path, state)
        with h5py.File(path, "r") as f:
            group = f["states"][state]
            params = list(group.attrs["params"])
            burn_rows = int(group.attrs["burn_rows"])
            chain = group["chain"][burn_rows:]  # (draws, chains, params)
        assert chain.shape == (2000, 4, len(params))
        data = az.from_dict(
            posterior={p: chain[:, :, k].T for k, p in enumerate(params)}
        )
        main, median = reference(data, params)
        assert_agrees(table, main, median, params)
        if state == "g":
            # Independent chains on an easy target: converged.
            assert np.all(table["rhat"] < 1.01), table["rhat"]
