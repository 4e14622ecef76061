"""The numbers behind ``sampo plot``'s figures against numpy on the same file.

``sampo plot FILE --format json`` writes what each figure draws: histogram
counts, highest-density levels, quantiles, decimated traces and running
means, batch bands, path fans. Recomputed here from the datasets with h5py
and numpy, they must agree: exactly for counts and copied values, within one
fine bin for quantiles read off a histogram.
"""

import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))


def run(tmp_path, config, sets):
    out = tmp_path / f"{config}.h5"
    args = [str(SAMPO_BIN), "run", str(REPO / "configs" / f"{config}.toml"), "-q"]
    args += ["-o", str(out), "--threads", "1"]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True, cwd=tmp_path)
    return out


def figure(tmp_path, out, *args):
    target = tmp_path / "figure.json"
    cmd = [str(SAMPO_BIN), "plot", str(out), "--format", "json", "-o", str(target), *args]
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True)
    return json.loads(target.read_text())


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ensemble")
    sets = ["sampler.steps=400", "states.rosenbrock.steps=400", "sampler.burn=40"]
    return tmp, run(tmp, "quickstart", sets + ["states.rosenbrock.burn=40"])


def test_corner_histograms_levels_and_quantiles(ensemble):
    tmp, out = ensemble
    burn, thin = 60, 3
    c = figure(tmp, out, "--state", "rosenbrock", "--kind", "corner", "--burn", str(burn),
               "--thin", str(thin), "--params", "a,c,b", "--truth", "a=2")
    with h5py.File(out, "r") as f:
        chain = f["states/rosenbrock/chain"][...]
    # emcee's get_chain(discard=burn, thin=thin, flat=True), columns a, c, b.
    draws = chain[burn + thin - 1::thin].reshape(-1, chain.shape[-1])[:, [0, 2, 1]]
    assert c["figure"] == "corner" and c["params"] == ["a", "c", "b"]
    assert c["draws"] == len(draws) and c["truths"] == [2.0, None, None]
    for k, m in enumerate(c["marginals"]):
        x = draws[:, k]
        h = m["hist"]
        assert (h["lo"], h["hi"]) == (x.min(), x.max())
        counts, _ = np.histogram(x, bins=h["bins"], range=(h["lo"], h["hi"]))
        np.testing.assert_array_equal(h["counts"], counts)
        assert m["mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-12)
        q = np.quantile(x, [0.05, 0.5, 0.95])
        got = np.array([m["q05"], m["q50"], m["q95"]])
        # Read off a fine histogram: within a bin (and the sample's own
        # step between order statistics).
        step = np.max(np.diff(np.sort(x)))
        assert np.all(np.abs(got - q) <= m["quantile_resolution"] + step), (got, q)
    assert len(c["pairs"]) == 3
    for p in c["pairs"]:
        i, j, h = p["i"], p["j"], p["hist"]
        x, y = h["x"], h["y"]
        counts, _, _ = np.histogram2d(draws[:, j], draws[:, i], bins=[x["bins"], y["bins"]],
                                      range=[[x["lo"], x["hi"]], [y["lo"], y["hi"]]])
        np.testing.assert_array_equal(np.array(h["counts"]).reshape(x["bins"], y["bins"]), counts)
        total = counts.sum()
        assert total == len(draws)
        for mass, level in zip(c["masses"], p["levels"]):
            # The bins at or above the level hold at least the mass; those
            # above it, less: the highest-density region of that mass.
            assert counts[counts >= level].sum() >= mass * total
            assert counts[counts > level].sum() < mass * total
        # The regions drawn: of the histogram smoothed by a Gaussian kernel
        # of smoothing_bins bins (truncated at 2 sigma), along y then x.
        sigma = p["smoothing_bins"]
        r = int(np.ceil(2 * sigma))
        w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
        w /= w.sum()
        smoothed = np.apply_along_axis(lambda v: np.convolve(v, w, mode="same"), 1, counts)
        smoothed = np.apply_along_axis(lambda v: np.convolve(v, w, mode="same"), 0, smoothed)
        got = np.array(p["smoothed"]).reshape(x["bins"], y["bins"])
        np.testing.assert_allclose(got, smoothed, rtol=1e-12, atol=1e-12)
        assert got.sum() <= total + 1e-9 and got.sum() > 0.9 * total
        for mass, level in zip(c["masses"], p["smoothed_levels"]):
            whole = got.sum()
            assert got[got >= level].sum() >= mass * whole * (1 - 1e-12)
            assert got[got > level].sum() < mass * whole * (1 + 1e-12)


def test_trace_is_the_stored_rows_decimated_with_the_running_mean(ensemble):
    tmp, out = ensemble
    burn, thin = 100, 2
    t = figure(tmp, out, "--state", "gauss", "--kind", "trace", "--burn", str(burn),
               "--thin", str(thin))
    with h5py.File(out, "r") as f:
        chain = f["states/gauss/chain"][...]
        log_prob = f["states/gauss/log_prob"][...]
    assert t["panels"] == ["x", "y", "log_prob"]
    assert (t["rows"], t["burn"], t["thin"], t["chains"]) == (400, burn, thin, 32)
    rows = np.arange(thin - 1, 400, thin)
    x = np.array(t["x"])
    assert set(x) <= set(rows) and x[0] == rows[0]
    for p in range(3):
        values = chain[:, :, p] if p < 2 else log_prob
        for line, w in enumerate(t["shown"]):
            np.testing.assert_array_equal(t["lines"][p][line], values[x, w])
        for k, row in enumerate(x):
            used = rows[(rows >= burn) & (rows <= row)]
            got = t["running_mean"][p][k]
            if len(used) == 0:
                assert got is None or np.isnan(got)
            else:
                assert got == pytest.approx(values[used].mean(), rel=1e-12, abs=1e-12)


def test_diagnostics_are_the_runs_summary(ensemble):
    tmp, out = ensemble
    d = figure(tmp, out, "--state", "rosenbrock", "--kind", "diagnostics")
    with h5py.File(out, "r") as f:
        states = [s.decode().rstrip("\0") for s in f["summary/state"][...]]
        mask = np.array(states) == "rosenbrock"
        np.testing.assert_array_equal(d["rhat"], f["summary/rhat"][...][mask])
        np.testing.assert_array_equal(d["ess_bulk"], f["summary/ess_bulk"][...][mask])
    assert d["labels"] == ["a", "b", "c", "d", "e"]
    assert (d["rhat_max"], d["ess_min"]) == (1.01, 400.0)


def test_batch_band_is_numpys_quantiles(tmp_path):
    out = run(tmp_path, "batch", ["sampler.items=3000", "sampler.validate=5"])
    b = figure(tmp_path, out, "--kind", "batch")
    with h5py.File(out, "r") as f:
        y = f["batch/decay/outputs"][...]
    q = np.nanquantile(y, [0.1, 0.5, 0.9], axis=0)
    np.testing.assert_allclose([b["p10"], b["p50"], b["p90"]], q, rtol=1e-12, atol=1e-15)
    assert b["labels"] == ["t0.25", "t0.5", "t1", "t2", "t4"]
    assert b["x"] == [0.25, 0.5, 1.0, 2.0, 4.0] and b["log_x"] is True
    # Four of the five outputs by default, spread from the first to the last.
    assert [h["name"] for h in b["histograms"]] == ["t0.25", "t0.5", "t1", "t4"]
    b = figure(tmp_path, out, "--kind", "batch", "--params", "t2,t0.25")
    assert [(h["name"], h["column"]) for h in b["histograms"]] == [("t2", 3), ("t0.25", 0)]
    with h5py.File(out, "r") as f:
        outputs = f["batch/decay/outputs"][...]
    for h in b["histograms"]:
        y = outputs[:, h["column"]]
        hist = h["hist"]
        assert (hist["lo"], hist["hi"]) == (y.min(), y.max())
        counts, edges = np.histogram(y, bins=hist["bins"], range=(hist["lo"], hist["hi"]))
        np.testing.assert_array_equal(hist["counts"], counts)
        assert sum(hist["counts"]) == len(y) == 3000 and h["missing"] == 0


def test_hitting_steps_are_numpys_histogram_of_the_paths(tmp_path):
    # Every step recorded: each path's first step in the target set is read
    # off its stored states.
    out = run(tmp_path, "paths", ["sampler.paths=500", 'sampler.record="both"', "sampler.steps=60",
                                  "sampler.statistics={every=1,quantiles=[0.05,0.5,0.95]}"])
    with h5py.File(out, "r") as f:
        for state, target in [("weather", [2]), ("ruin", [0, 5]), ("queue", [10])]:
            p = figure(tmp_path, out, "--state", state)
            h = p["hitting"]
            g = f["paths/" + state]
            states = g["states"][...]
            hit = np.isin(states, target)
            first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
            assert h["steps"] == list(range(61))
            np.testing.assert_array_equal(h["edges"], np.arange(-1, 61) + 0.5)
            counts, _ = np.histogram(first[first >= 0], bins=h["edges"])
            np.testing.assert_array_equal(h["counts"], counts)
            assert h["paths"] == 500 and h["never"] == np.sum(first < 0)
            assert h["never"] / 500 == pytest.approx(g["hitting"][0, 4], abs=1e-12)
            if state == "weather":
                fine = np.array(h["counts"])
        assert figure(tmp_path, out, "--state", "walk")["hitting"] is None
    # Every tenth step recorded: bin k holds the first hits after recorded
    # step k - 1 and by step k, and its edges are the recorded steps.
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    out = run(coarse, "paths", ["sampler.paths=500", 'sampler.record="both"', "sampler.steps=60",
                                "sampler.statistics={every=10,quantiles=[0.05,0.5,0.95]}"])
    h = figure(coarse, out, "--state", "weather")["hitting"]
    assert h["steps"] == [0, 10, 20, 30, 40, 50, 60]
    assert h["edges"] == [-0.5, 0.5, 10.5, 20.5, 30.5, 40.5, 50.5, 60.5]
    # The same paths (each has its own stream): the coarse bins are sums of
    # the fine ones.
    below = np.concatenate([[0], np.cumsum(fine)])
    np.testing.assert_array_equal(h["counts"], np.diff(below[[0, 1, 11, 21, 31, 41, 51, 61]]))
    assert h["never"] == 500 - fine.sum()


def test_path_fan_and_occupation_are_the_files(tmp_path):
    out = run(tmp_path, "paths", ["sampler.paths=400", 'sampler.record="both"'])
    with h5py.File(out, "r") as f:
        for state in ["weather", "stock"]:
            p = figure(tmp_path, out, "--state", state)
            g = f["paths/" + state]
            np.testing.assert_array_equal(p["times"], g["times"][...])
            np.testing.assert_array_equal(p["quantiles"], g["quantiles"][...])
            np.testing.assert_array_equal(p["levels"], [0.05, 0.5, 0.95])
            np.testing.assert_array_equal(p["samples"], g["states"][:5].astype(float))
            np.testing.assert_allclose(p["mean"], g["states"][...].mean(axis=0), rtol=1e-12)
            if state == "weather":
                assert p["labels"] == ["sun", "cloud", "rain"]
                np.testing.assert_array_equal(p["occupation"], g["occupation"][...])
            else:
                assert p["occupation"] == []


def test_smc_schedule_and_transc_probabilities_are_the_files(tmp_path):
    out = run(tmp_path, "smc", ["sampler.particles=200", "sampler.effective=400",
                                "sampler.total=200", "sampler.groups=3"])
    s = figure(tmp_path, out, "--kind", "smc")
    with h5py.File(out, "r") as f:
        g = f["smc/gauss"]
        np.testing.assert_array_equal(s["beta"], g["beta"][...])
        np.testing.assert_array_equal(s["group_log_z"], g["group_log_z"][...])
        assert s["log_evidence"] == g.attrs["log_evidence"]
    out = run(tmp_path, "transc", ["sampler.steps=200", "transc.steps=300", "transc.walkers=8"])
    t = figure(tmp_path, out, "--kind", "transc")
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(t["probability"], f["transc/probability"][...])
        np.testing.assert_array_equal(t["walkers"], f["transc/state"][:4].astype(float))
    assert t["states"] == ["s1", "s2", "s3"]
