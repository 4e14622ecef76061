"""The `sampo` Python package (python/sampo) against files of every kind.

Each reader is checked against what the file holds read another way: the
draws against emcee's HDFBackend, ``az.summary`` of ``run.to_arviz()`` against
the stored ``/summary`` (as test_arviz_client.py does by hand), and the
transc, smc, batch and paths readers against the datasets read with h5py.
The package is imported from this repository's python/ folder, ahead of any
installed copy, so the tests read the code they sit beside.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from specs import SLOW, TWO_STATES

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))
sys.path.insert(0, str(REPO / "python"))

import sampo  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # ArviZ 0.2x announces 1.0
import arviz as az  # noqa: E402
import emcee  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ENSEMBLE = """
[run]
name = "package-ensemble"
seed = 21
[sampler]
kind = "ensemble"
walkers = 16
steps = 1200
burn = 300
thin = 2
""" + TWO_STATES

# One state, so that `run.to_arviz()` is one InferenceData.
CHAINS = """
[run]
name = "package-chains"
seed = 22
[sampler]
kind = "chains"
chains = 4
steps = 3000
burn = 1000
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.6], [0.6, 2.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0], high = [20.0, 20.0] }
"""

REPLICATES = """
[run]
name = "package-replicates"
seed = 23
replicates = 3
[sampler]
kind = "ensemble"
walkers = 12
steps = 400
burn = 100
""" + TWO_STATES

SMC = """
[run]
name = "package-smc"
seed = 24
[sampler]
kind = "smc"
particles = 400
groups = 4
[[states]]
name = "narrow"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
[[states]]
name = "wide"
params = ["x", "y"]
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0], high = [20.0, 20.0] }
"""

# About 16 s on one thread: chain 0's 16000 steps, then chain 1's; chain 1's
# rows reach the file a second or two after it starts.
SLOW_CHAINS = """
[run]
seed = 6
[parallel]
threads = 1
[sampler]
kind = "chains"
chains = 2
steps = 16000
burn = 200
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
cost_us = 500
"""

# Our /summary column → az.summary's metric.
METRICS = {
    "mean": "mean",
    "sd": "sd",
    "mcse_mean": "mcse_mean",
    "ess_bulk": "ess_bulk",
    "ess_tail": "ess_tail",
    "rhat": "r_hat",
}


def run_spec(directory, text, name, *sets):
    spec = directory / f"{name}.toml"
    spec.write_text(text, encoding="utf-8")
    return run_file(directory, spec, name, *sets)


def run_file(directory, spec, name, *sets):
    if not SAMPO_BIN.is_file():
        pytest.fail(f"sampo binary not found at {SAMPO_BIN}; build it or set SAMPO_BIN")
    out = directory / f"{name}.h5"
    cmd = [str(SAMPO_BIN), "run", str(spec), "-o", str(out), "--quiet", "--threads", "2"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=directory)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("package")
    paths_spec = (REPO / "configs" / "paths.toml").read_text()
    paths_spec = paths_spec.replace("paths = 100_000", "paths = 2000").replace(
        'record = "statistics"', 'record = "both"'
    )
    (d / "paths.toml").write_text(paths_spec)
    return {
        "ensemble": run_spec(d, ENSEMBLE, "ensemble"),
        "chains": run_spec(d, CHAINS, "chains"),
        "replicates": run_spec(d, REPLICATES, "replicates"),
        "smc": run_spec(d, SMC, "smc"),
        "transc": run_file(d, REPO / "configs" / "transc.toml", "transc",
                           "sampler.steps=1000", "transc.steps=2000"),
        "batch": run_file(d, REPO / "configs" / "batch.toml", "batch",
                          "sampler.items=2000", "sampler.validate=10"),
        "paths": run_file(d, d / "paths.toml", "paths"),
    }


def arviz_summary(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.summary(data, round_to="none")


def assert_summary_agrees(stored, computed):
    assert list(stored.index) == list(computed.index)
    for ours, theirs in METRICS.items():
        np.testing.assert_allclose(
            stored[ours].to_numpy(), computed[theirs].to_numpy(), rtol=1e-8, err_msg=ours
        )


# --- the run's facts -------------------------------------------------------------------

def test_a_run_knows_its_kind_states_status_and_spec(files):
    expect = {
        "ensemble": ("ensemble", ["g", "funnel"], False),
        "chains": ("chains", ["g"], False),
        "smc": ("smc", ["narrow", "wide"], False),
        "transc": ("ensemble", ["s1", "s2", "s3"], True),
        "batch": ("batch", ["decay"], False),
        "paths": ("paths", ["weather", "ruin", "walk", "stock", "rate", "queue", "arrivals"],
                  False),
    }
    for name, (kind, states, transc) in expect.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a complete run opens without a warning
            run = sampo.open(files[name])
        assert (run.kind, run.states, run.has_transc) == (kind, states, transc), name
        assert run.status == "complete" and run.complete
        with h5py.File(files[name], "r") as f:
            text = f.attrs["spec"]
            assert run.spec_text == text
            assert run.spec == tomllib.loads(text)
            assert run.attrs["seed"] == int(f.attrs["seed"])
            assert run.resolved_spec["name"] == f.attrs["name"]


# --- draws: chain, log_prob and emcee ---------------------------------------------------

@pytest.mark.parametrize("discard,thin", [("burn", 1), ("burn", 3), (0, 1), (17, 4)])
def test_chain_is_what_emcee_reads(files, discard, thin):
    run = sampo.open(files["ensemble"])
    for state in ["g", "funnel"]:
        backend = emcee.backends.HDFBackend(
            str(files["ensemble"]), name=f"states/{state}", read_only=True
        )
        burn = run.state_attrs(state)["burn_rows"] if discard == "burn" else discard
        assert burn == (150 if discard == "burn" else discard)  # 300 steps at thin 2
        for flat in (False, True):
            want = backend.get_chain(discard=burn, thin=thin, flat=flat)
            got = run.chain(state, discard=discard, thin=thin, flat=flat)
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            want = backend.get_log_prob(discard=burn, thin=thin, flat=flat)
            np.testing.assert_array_equal(
                run.log_prob(state, discard=discard, thin=thin, flat=flat), want
            )
        np.testing.assert_array_equal(run.acceptance_fraction(state), backend.accepted / backend.iteration)
    assert run.chain("g").shape == (600 - 150, 16, 2)
    assert run.params("funnel") == ["v", "x1", "x2"]


def test_replicates_are_read_from_their_shared_datasets(files):
    run = sampo.open(files["replicates"])
    with h5py.File(files["replicates"], "r") as f:
        g = f["replicates/funnel"]
        burn = int(g.attrs["burn_rows"])
        for k in range(3):
            np.testing.assert_array_equal(run.chain("funnel", replicate=k), g["chain"][burn:, k])
            np.testing.assert_array_equal(run.log_prob("funnel", replicate=k), g["log_prob"][burn:, k])
            table = run.summary("funnel", replicate=k)
            rows = (f["summary/state"][...] == b"funnel") & (f["summary/replicate"][...] == k)
            np.testing.assert_array_equal(table["mean"].to_numpy(), f["summary/mean"][...][rows])
    with pytest.raises(IndexError):
        run.chain("g", replicate=3)


# --- ArviZ and the stored summary -------------------------------------------------------

def test_arviz_summary_of_the_ensemble_is_the_stored_summary(files):
    run = sampo.open(files["ensemble"])
    idatas = run.to_arviz()
    assert set(idatas) == {"g", "funnel"}  # several states: one InferenceData each
    for state, idata in idatas.items():
        post = idata.posterior
        assert list(post.data_vars) == run.params(state)
        assert post.sizes["chain"] == 16 and post.sizes["draw"] == 600 - 150
        assert post.attrs["independent_chains"] == 0
        np.testing.assert_array_equal(idata.sample_stats["lp"].values, run.log_prob(state).T)
        np.testing.assert_array_equal(
            idata.sample_stats["acceptance_rate"].values, run.acceptance_fraction(state)
        )
        assert_summary_agrees(run.summary(state), arviz_summary(idata))
    # A name gives the one InferenceData.
    single = run.to_arviz("funnel")
    np.testing.assert_array_equal(single.posterior["x1"].values, run.chain("funnel")[:, :, 1].T)


def test_arviz_summary_of_the_chains_is_the_stored_summary_in_one_line(files):
    run = sampo.open(files["chains"])
    computed = az.summary(run.to_arviz(), round_to="none")
    assert_summary_agrees(run.summary("g"), computed)
    idata = run.to_arviz()
    assert idata.posterior.attrs["independent_chains"] == 1
    assert idata.posterior.sizes["chain"] == 4 and idata.posterior.sizes["draw"] == 2000
    # Independent chains on an easy target: converged.
    assert (computed["r_hat"] < 1.01).all()


def test_summary_is_the_stored_table(files):
    run = sampo.open(files["ensemble"])
    table = run.summary()
    with h5py.File(files["ensemble"], "r") as f:
        t = f["summary"]
        columns = list(t.attrs["columns"])
        assert list(table.columns) == ["state", "replicate", "param"] + columns
        assert list(table["state"]) == list(t["state"].asstr()[...])
        assert list(table["param"]) == list(t["param"].asstr()[...])
        for c in columns:
            np.testing.assert_array_equal(table[c].to_numpy(), t[c][...], err_msg=c)
    by_param = run.summary("funnel")
    assert list(by_param.index) == ["v", "x1", "x2"]
    np.testing.assert_array_equal(
        by_param["rhat"].to_numpy(), table[table["state"] == "funnel"]["rhat"].to_numpy()
    )
    with pytest.raises(KeyError):
        run.summary("nope")


# --- the other kinds' readers -----------------------------------------------------------

def test_transc_returns_the_stored_numbers(files):
    t = sampo.open(files["transc"]).transc()
    with h5py.File(files["transc"], "r") as f:
        g = f["transc"]
        assert t.states == ["s1", "s2", "s3"] and t.method == "resample"
        for name in ["probability", "probability_err", "log_evidence", "log_evidence_err"]:
            np.testing.assert_array_equal(getattr(t, name), g[name][...], err_msg=name)
            np.testing.assert_array_equal(t.table()[name].to_numpy(), g[name][...])
        for name in ["state", "member", "visits", "moves", "tau"]:
            np.testing.assert_array_equal(t.data[name], g[name][...], err_msg=name)
        assert t.attrs["walkers"] == int(g.attrs["walkers"])
        np.testing.assert_array_equal(t.attrs["tau"], g.attrs["tau"])
        for s in t.states:
            q = g["pseudo_prior"][s]
            for name in ["weights", "means", "covs"]:
                np.testing.assert_array_equal(t.pseudo_prior[s][name], q[name][...])
            assert t.pseudo_prior[s]["attrs"]["members"] == int(q.attrs["members"])
    assert list(t.table().index) == ["s1", "s2", "s3"]
    assert abs(t.probability.sum() - 1) < 1e-12


def test_smc_returns_the_evidences_and_weighted_particles(files):
    run = sampo.open(files["smc"])
    results = run.smc()
    assert list(results) == ["narrow", "wide"]
    with h5py.File(files["smc"], "r") as f:
        p = f["smc/state_probabilities"]
        names = list(p["state"].asstr()[...])
        for state, r in results.items():
            g = f["smc"][state]
            assert r.log_evidence == g.attrs["log_evidence"]
            assert r.log_evidence_err == g.attrs["log_evidence_err"]
            assert r.params == ["x", "y"]
            for name in ["group_log_z", "particles", "log_weights", "posterior"]:
                np.testing.assert_array_equal(getattr(r, name), g[name][...], err_msg=name)
            for name in ["beta", "log_z", "ess", "acceptance", "steps", "iteration", "group"]:
                np.testing.assert_array_equal(r.data[name], g[name][...], err_msg=name)
            assert abs(r.weights.sum() - 1) < 1e-9
            k = names.index(state)
            assert r.probability == p["probability"][k]
            assert r.probability_err == p["error"][k]
            table = r.table()
            np.testing.assert_array_equal(table["y"].to_numpy(), g["particles"][:, 1])
            np.testing.assert_array_equal(table["log_weight"].to_numpy(), g["log_weights"][...])
    # Boxes of area 400 and 1600: Z = 1/400 and 1/1600, p = 0.8 and 0.2.
    narrow = run.smc("narrow")
    assert abs(narrow.log_evidence + np.log(400)) < 5 * narrow.log_evidence_err
    assert abs(narrow.probability - 0.8) < 5 * narrow.probability_err


def test_to_arviz_of_an_smc_state_is_an_equally_weighted_draw(files):
    """The posterior ArviZ gets is the file's equally weighted draw, whose means
    match the weighted particles' means within the draw's Monte Carlo error."""
    run = sampo.open(files["smc"])
    every = run.to_arviz()
    assert list(every) == ["narrow", "wide"]
    with h5py.File(files["smc"], "r") as f:
        for state, idata in every.items():
            g = f["smc"][state]
            particles, log_w, draw = g["particles"][...], g["log_weights"][...], g["posterior"][...]
            post = idata.posterior
            assert dict(post.sizes) == {"chain": 1, "draw": len(draw)}
            np.testing.assert_array_equal(post["y"].values[0], draw[:, 1])
            w = np.exp(log_w - log_w.max())
            w /= w.sum()
            mean = w @ particles
            sd = np.sqrt(w @ (particles - mean) ** 2)
            stats = az.summary(idata, kind="stats", round_to="none")
            for k, p in enumerate(["x", "y"]):
                err = sd[k] / np.sqrt(len(draw))
                assert abs(stats.loc[p, "mean"] - mean[k]) < 5 * err, (state, p)
                assert abs(stats.loc[p, "sd"] / sd[k] - 1) < 0.15, (state, p)
            assert post.attrs["sampo_kind"] == "smc"
            assert post.attrs["log_evidence"] == g.attrs["log_evidence"]
            np.testing.assert_array_equal(
                idata.sample_stats["log_evidence"].values, [g.attrs["log_evidence"]]
            )
    n = every["narrow"].posterior.sizes["draw"]
    thinned = run.to_arviz("narrow", thin=4).posterior
    assert thinned.sizes["draw"] == len(range(0, n, 4))
    np.testing.assert_array_equal(thinned["x"].values[0], every["narrow"].posterior["x"].values[0, ::4])
    with pytest.raises(ValueError, match="nothing to discard"):
        run.to_arviz("narrow", discard=10)


def test_batch_returns_labelled_inputs_outputs_and_statistics(files):
    b = sampo.open(files["batch"]).batch("decay")
    assert b.param_names == ["amplitude", "tau"]
    assert b.output_names == ["t0.25", "t0.5", "t1", "t2", "t4"]
    with h5py.File(files["batch"], "r") as f:
        g = f["batch/decay"]
        np.testing.assert_array_equal(b.inputs, g["inputs"][...])
        np.testing.assert_array_equal(b.outputs, g["outputs"][...])
        np.testing.assert_array_equal(b.status, g["status"][...])
        table = b.table()
        assert list(table.columns) == b.param_names + b.output_names + ["status", "message"]
        np.testing.assert_array_equal(table["tau"].to_numpy(), g["inputs"][:, 1])
        np.testing.assert_array_equal(table["t2"].to_numpy(), g["outputs"][:, 3])
        stats = b.statistics_table()
        assert list(stats.index) == list(g.attrs["statistics"])
        np.testing.assert_array_equal(stats.to_numpy(), g["statistics"][...])
    assert b.done.all() and len(table) == 2000
    # The stored mean of an output is the mean of its column.
    np.testing.assert_allclose(stats.loc["mean", "t1"], table["t1"].mean(), rtol=1e-12)


def test_paths_returns_statistics_with_errors_and_the_paths(files):
    run = sampo.open(files["paths"])
    everything = run.paths()
    assert list(everything) == run.states
    assert all(r.paths is None for r in everything.values())  # not read unless asked
    with h5py.File(files["paths"], "r") as f:
        for state in run.states:
            g = f["paths"][state]
            r = run.paths(state, paths=True)
            np.testing.assert_array_equal(r.times, g["times"][...])
            stats = g["statistics"][...]
            np.testing.assert_array_equal(np.stack([r.mean, r.sd, r.se], axis=1), stats)
            np.testing.assert_array_equal(r.paths, g["states"][...])
            np.testing.assert_array_equal(r.quantiles, g["quantiles"][...])
            assert r.quantile_levels == [0.05, 0.5, 0.95]
            table = r.table()
            np.testing.assert_array_equal(table["se"].to_numpy(), stats[:, 2])
            np.testing.assert_array_equal(table["q0.95"].to_numpy(), g["quantiles"][:, 2])
            if "occupation" in g:
                np.testing.assert_array_equal(r.occupation, g["occupation"][...])
                np.testing.assert_array_equal(r.occupation_se, g["occupation_se"][...])
                assert r.labels == [s.decode() if isinstance(s, bytes) else s
                                    for s in g.attrs["labels"]]
    assert run.paths("weather").labels == ["sun", "cloud", "rain"]
    np.testing.assert_array_equal(run.paths("ruin").data["absorption"],
                                  h5py.File(files["paths"], "r")["paths/ruin/absorption"][...])


def test_a_reader_of_another_kind_says_so(files):
    ensemble = sampo.open(files["ensemble"])
    for read in (ensemble.transc, ensemble.smc, ensemble.batch, ensemble.paths):
        with pytest.raises(sampo.NotInThisRun, match="ensemble"):
            read()
    batch = sampo.open(files["batch"])
    with pytest.raises(sampo.NotInThisRun, match="no stored draws"):
        batch.chain("decay")
    with pytest.raises(sampo.NotInThisRun, match="no /summary"):
        batch.summary()
    with pytest.raises(sampo.NotInThisRun, match="no stored draws"):
        batch.to_arviz()


# --- the documentation's examples ---------------------------------------------------------

def test_the_examples_in_docs_python_md_run(tmp_path, monkeypatch):
    """Every ```python block of docs/python.md, in order and in one namespace,
    in a folder holding the files they name."""
    d = tmp_path
    monkeypatch.chdir(d)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    quick = ["sampler.steps=600", "sampler.burn=100", "states.1.steps=600", "states.1.burn=100"]
    run_file(d, REPO / "configs" / "quickstart.toml", "quickstart", *quick)
    run_file(d, REPO / "configs" / "transc.toml", "transc", "sampler.steps=1000", "transc.steps=2000")
    run_file(d, REPO / "configs" / "smc.toml", "smc")
    run_file(d, REPO / "configs" / "batch.toml", "batch", "sampler.items=1000", "sampler.validate=10")
    paths_spec = (REPO / "configs" / "paths.toml").read_text()
    (d / "p.toml").write_text(paths_spec.replace("paths = 100_000", "paths = 1000").replace(
        'record = "statistics"', 'record = "both"'))
    run_file(d, d / "p.toml", "paths")
    shutil.copy(REPO / "examples" / "python" / "walk.py", d)
    monkeypatch.syspath_prepend(str(d))
    text = (REPO / "docs" / "python.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 8
    namespace = {}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/python.md block {k + 1}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"docs/python.md python block {k + 1} failed: {e!r}\n{block}")
    assert namespace["run"].kind == "ensemble"
    assert len(namespace["values"]) == 101


# --- unfinished files -------------------------------------------------------------------

def start_slow(tmp_path, text=None, name="slow"):
    spec = tmp_path / f"{name}.toml"
    spec.write_text(text or SLOW)
    proc = subprocess.Popen([str(SAMPO_BIN), "run", str(spec), "-q"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, tmp_path / f"{name}.h5.partial"


def wait_for_rows(partial, proc, at_least, limit=20.0):
    """Rows of state g sampo has flushed, once there are at least `at_least`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        assert proc.poll() is None, f"sampo exited {proc.returncode}"
        if partial.exists():
            try:
                with h5py.File(partial, "r", locking=False) as f:
                    it = int(f["states/g"].attrs["iteration"])
            except (OSError, KeyError):
                it = 0  # caught between two flushes
            if it >= at_least:
                return it
        time.sleep(0.2)
    pytest.fail(f"fewer than {at_least} rows after {limit} s")


def test_a_running_then_paused_file_opens_as_incomplete(tmp_path):
    proc, partial = start_slow(tmp_path)
    try:
        seen = wait_for_rows(partial, proc, 1)
        with pytest.warns(sampo.IncompleteRunWarning, match="running"):
            run = sampo.open(partial)
        assert run.status == "running" and not run.complete
        first = run.chain("g", discard=0)
        assert first.shape[0] >= seen and first.shape[1:] == (16, 2)
        assert np.all(np.isfinite(first)) and np.all(np.isfinite(run.log_prob("g", discard=0)))
        wait_for_rows(partial, proc, first.shape[0] + 1)
        second = run.chain("g", discard=0)  # the same Run sees the new rows
        assert second.shape[0] > first.shape[0]
        np.testing.assert_array_equal(second[: first.shape[0]], first)
        assert np.all(np.isfinite(second))
        # Paused (SIGTERM: checkpoint, exit 75): still incomplete, and says why.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 75
    finally:
        proc.kill()
        proc.wait()
    with pytest.warns(sampo.IncompleteRunWarning, match="paused"):
        paused = sampo.open(partial)
    assert paused.status == "paused" and not paused.complete
    with h5py.File(partial, "r") as f:
        it = int(f["states/g"].attrs["iteration"])
    assert it >= second.shape[0]
    np.testing.assert_array_equal(paused.chain("g", discard=0)[: second.shape[0]], second)
    assert paused.chain("g", discard=0).shape[0] == it


def test_a_killed_run_gives_exactly_the_rows_every_chain_has(tmp_path):
    # Two chains on one thread: the first runs to its end before the second
    # starts, so the file holds rows of the first that the second has not
    # written; `iteration` counts the rows both have.
    proc, partial = start_slow(tmp_path, SLOW_CHAINS, "g")
    # Chain 0 takes 8 s alone; chain 1's first rows reach the file within
    # a flush (2 s) of its start, and it has 8 s more to run.
    wait_for_rows(partial, proc, 1, limit=60.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.warns(sampo.IncompleteRunWarning):
        run = sampo.open(partial)
    assert not run.complete
    with h5py.File(partial, "r") as f:
        g = f["states/g"]
        it = int(g.attrs["iteration"])
        assert np.isfinite(g["chain"][it:, 0]).any()  # rows past `iteration` are stored
        np.testing.assert_array_equal(run.chain("g", discard=0), g["chain"][:it])
        np.testing.assert_array_equal(run.log_prob("g", discard=0), g["log_prob"][:it])
        burn = int(g.attrs["burn_rows"])
        assert run.chain("g").shape[0] == max(it - burn, 0)
    assert np.all(np.isfinite(run.chain("g", discard=0)))
    with pytest.raises(sampo.NotInThisRun, match="no rows yet"):
        run.summary()
    # warn=False opens quietly.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sampo.open(partial, warn=False).status == "running"
