"""sampo's output read by real Python clients: emcee's HDFBackend and h5py.

The contract (DESIGN.md, "the output file"): every state's ensemble is a group
that ``emcee.backends.HDFBackend(path, name="states/<state>", read_only=True)``
reads as if emcee had written it, and the root records the run's provenance.

Run with the binary built first::

    cargo build --release
    scripts/python-env.sh && .venv/bin/python -m pytest -q tests/python

``SAMPO_BIN`` chooses another binary (default ``<repo>/target/release/sampo``).
"""

import math
import os
import subprocess
from pathlib import Path

import emcee
import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))

# The two-state run most tests read. The comment line carries non-ASCII text
# on purpose: the spec attribute must round-trip it exactly.
GAUSS_MEAN = [0.5, -1.0, 2.0]
GAUSS_COV = [
    [1.0, 0.6, -0.3],
    [0.6, 2.0, 0.4],
    [-0.3, 0.4, 0.5],
]
GAUSS_BOX = 20.0
FUNNEL_SIGMA = 3.0
FUNNEL_LOW = [-15.0, -60.0]
FUNNEL_HIGH = [15.0, 60.0]
SEED = 2024


def toml_list(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def toml_matrix(rows):
    return "[" + ", ".join(toml_list(r) for r in rows) + "]"


TWO_STATE_SPEC = f"""\
# Client test: a correlated Gaussian and Neal's funnel (σ = 3), side by side.
[run]
name = "emcee-client"
seed = {SEED}

[sampler]
kind = "ensemble"
walkers = 32
steps = 600
burn = 200
thin = 1
moves = [{{ kind = "stretch", a = 2.0, weight = 1.0 }}]
init = {{ kind = "prior" }}

[[states]]
name = "gauss3"
params = ["a", "b", "c"]
model = {{ kind = "gaussian", mean = {toml_list(GAUSS_MEAN)}, cov = {toml_matrix(GAUSS_COV)} }}
prior = {{ kind = "uniform", low = {toml_list([-GAUSS_BOX] * 3)}, high = {toml_list([GAUSS_BOX] * 3)} }}

[[states]]
name = "funnel2"
params = ["v", "x"]
model = {{ kind = "funnel", dim = 2, sigma = {FUNNEL_SIGMA!r} }}
prior = {{ kind = "uniform", low = {toml_list(FUNNEL_LOW)}, high = {toml_list(FUNNEL_HIGH)} }}
walkers = 24
steps = 400
burn = 100
init = {{ kind = "ball", center = [0.0, 0.0], radius = 0.5 }}
"""

# Per state: (walkers, steps, burn, ndim), as the spec above says.
STATES = {
    "gauss3": (32, 600, 200, 3),
    "funnel2": (24, 400, 100, 2),
}


def run_sampo(spec_path, out_path, threads):
    """Runs `sampo run` and fails the test with its stderr if it fails."""
    if not SAMPO_BIN.is_file():
        pytest.fail(f"sampo binary not found at {SAMPO_BIN}; run `cargo build --release` or set SAMPO_BIN")
    cmd = [str(SAMPO_BIN), "run", str(spec_path), "--output", str(out_path),
           "--threads", str(threads), "--force", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}"
    assert out_path.is_file(), f"sampo exited 0 but wrote no {out_path}"
    return out_path


def summary_of(f, state):
    """The /summary rows of one state (replicate 0), column by column."""
    table = f["summary"]
    rows = table["state"].asstr()[...] == state
    return {name: table[name][...][rows] for name in table.keys()}


def backend(path, state):
    return emcee.backends.HDFBackend(str(path), name=f"states/{state}", read_only=True)


@pytest.fixture(scope="module")
def two_state(tmp_path_factory):
    """The two-state run with 2 threads: (output path, spec text)."""
    d = tmp_path_factory.mktemp("two_state")
    spec = d / "two_state.toml"
    spec.write_text(TWO_STATE_SPEC, encoding="utf-8")
    return run_sampo(spec, d / "two_state.h5", threads=2), TWO_STATE_SPEC


# --- exact reference densities (numpy only), to check the stored log_prob ---

def gaussian_log_pdf(x, mean, cov):
    d = len(mean)
    r = x - np.asarray(mean)
    sign, logdet = np.linalg.slogdet(np.asarray(cov))
    assert sign > 0
    quad = np.einsum("...i,ij,...j->...", r, np.linalg.inv(cov), r)
    return -0.5 * (d * math.log(2 * math.pi) + logdet + quad)


def log_posterior(state, x):
    """log prior + log likelihood, both normalised, for points inside the box."""
    if state == "gauss3":
        return gaussian_log_pdf(x, GAUSS_MEAN, GAUSS_COV) - 3 * math.log(2 * GAUSS_BOX)
    v, y = x[..., 0], x[..., 1]
    log_v = -0.5 * (v / FUNNEL_SIGMA) ** 2 - math.log(FUNNEL_SIGMA) - 0.5 * math.log(2 * math.pi)
    log_y = -0.5 * (math.log(2 * math.pi) + v) - 0.5 * y * y * np.exp(-v)
    box = sum(math.log(h - l) for l, h in zip(FUNNEL_LOW, FUNNEL_HIGH))
    return log_v + log_y - box


# --- root attributes -----------------------------------------------------------

def test_root_attributes_record_the_run(two_state):
    path, spec_text = two_state
    with h5py.File(path, "r") as f:
        a = f.attrs
        assert a["spec"] == spec_text
        assert a["status"] == "complete"
        assert int(a["seed"]) == SEED
        assert a["name"] == "emcee-client"
        assert isinstance(a["sampo_version"], str) and a["sampo_version"]
        assert int(a["ranks"]) == 1
        assert int(a["threads_per_rank"]) == 2
        wall = float(a["wall_seconds"])
        assert math.isfinite(wall) and wall > 0
        assert isinstance(a["start_time"], str) and a["start_time"]
        assert set(f["states"].keys()) == set(STATES)
        # One timing row per task.
        for name in ("task", "rank", "start", "end", "evaluations"):
            assert f["timings"][name].shape == (len(STATES),), name
        ends = f["timings/end"][...]
        assert np.all(ends >= f["timings/start"][...])


def test_group_attributes_are_what_emcee_expects(two_state):
    path, _ = two_state
    with h5py.File(path, "r") as f:
        for state, (walkers, steps, _, ndim) in STATES.items():
            g = f["states"][state]
            for key in ("nwalkers", "ndim", "iteration"):
                assert g.attrs[key].dtype == np.int64, (state, key)
            assert (g.attrs["nwalkers"], g.attrs["ndim"], g.attrs["iteration"]) == (walkers, ndim, steps)
            assert g.attrs["has_blobs"].dtype == np.bool_ and not g.attrs["has_blobs"]
            assert isinstance(g.attrs["version"], str)
            assert not any(k.startswith("random_state_") for k in g.attrs)
            assert g["chain"].dtype == np.float64 and g["log_prob"].dtype == np.float64
            assert g["accepted"].dtype == np.float64 and g["accepted"].shape == (walkers,)
            # Chunked and resizable along the iterations, as emcee's own.
            assert g["chain"].chunks is not None and g["chain"].maxshape == (None, walkers, ndim)
            assert g["log_prob"].maxshape == (None, walkers)
            names = ["a", "b", "c"] if state == "gauss3" else ["v", "x"]
            # Fixed-length strings in the dataset; a list of str in the attribute.
            assert g["param_names"].dtype.kind == "S"
            assert list(g["param_names"].asstr()[...]) == names
            assert list(g.attrs["params"]) == names and all(isinstance(n, str) for n in g.attrs["params"])


# --- emcee's HDFBackend ------------------------------------------------------------

@pytest.mark.parametrize("state", sorted(STATES))
def test_backend_reads_what_h5py_reads(two_state, state):
    path, _ = two_state
    walkers, steps, _, ndim = STATES[state]
    b = backend(path, state)
    assert b.initialized
    assert b.iteration == steps
    assert tuple(int(n) for n in b.shape) == (walkers, ndim)
    assert not b.has_blobs() and b.get_blobs() is None
    assert b.random_state is None

    chain = b.get_chain()
    log_prob = b.get_log_prob()
    with h5py.File(path, "r") as f:
        g = f["states"][state]
        raw_chain = g["chain"][...]
        raw_log_prob = g["log_prob"][...]
        raw_accepted = g["accepted"][...]
        acceptance = float(summary_of(f, state)["acceptance"][0])
    assert chain.shape == (steps, walkers, ndim)
    assert log_prob.shape == (steps, walkers)
    assert np.array_equal(chain, raw_chain)
    assert np.array_equal(log_prob, raw_log_prob)
    assert np.all(np.isfinite(chain)) and np.all(np.isfinite(log_prob))

    # accepted counts accepted proposals per walker, one proposal per iteration:
    # emcee's acceptance fraction (accepted / iteration) is our summary's.
    assert np.array_equal(b.accepted, raw_accepted)
    assert np.all(b.accepted == np.round(b.accepted))
    assert np.all((b.accepted >= 0) & (b.accepted <= b.iteration))
    assert np.mean(b.accepted / b.iteration) == pytest.approx(acceptance, rel=1e-12)
    assert 0.1 < acceptance < 0.9

    last = b.get_last_sample()
    assert np.array_equal(last.coords, raw_chain[-1])
    assert np.array_equal(last.log_prob, raw_log_prob[-1])


THIN = 5
THIN_STEPS = {"gauss3": 3000, "funnel2": 2000}


@pytest.fixture(scope="module")
def thinned(tmp_path_factory):
    """The two-state run, longer and storing every THIN-th iteration."""
    d = tmp_path_factory.mktemp("thinned")
    text = (TWO_STATE_SPEC.replace("thin = 1\n", f"thin = {THIN}\n")
            .replace("steps = 600\n", f"steps = {THIN_STEPS['gauss3']}\n")
            .replace("steps = 400\n", f"steps = {THIN_STEPS['funnel2']}\n"))
    assert text.count(f"thin = {THIN}\n") == 1 and text.count("steps = ") == 2
    spec = d / "thinned.toml"
    spec.write_text(text, encoding="utf-8")
    return run_sampo(spec, d / "thinned.h5", threads=2)


@pytest.mark.parametrize("state", sorted(STATES))
def test_accepted_with_thin_is_an_acceptance_fraction_for_emcee(thinned, state):
    walkers = STATES[state][0]
    rows = THIN_STEPS[state] // THIN
    b = backend(thinned, state)
    assert b.iteration == rows
    # emcee's sample(thin_by=…) adds the acceptance of the last step of each
    # stored row, so accepted / iteration is each walker's acceptance fraction.
    fraction = b.accepted / b.iteration
    assert np.all(b.accepted == np.round(b.accepted))
    assert np.all((fraction >= 0) & (fraction <= 1)), fraction
    with h5py.File(thinned, "r") as f:
        # The summary's fraction counts every iteration, stored or not.
        acceptance = float(summary_of(f, state)["acceptance"][0])
    assert 0.1 < acceptance < 0.9
    # The stored rows are every THIN-th of all iterations, so emcee's mean
    # fraction estimates the summary's from n = walkers × rows accept/reject
    # outcomes: its standard error is about √(p (1 − p) / n) (≈ 0.004 for
    # gauss3, 0.007 for funnel2), the outcomes being nearly independent
    # (one per walker, THIN iterations apart). Five standard errors.
    n = walkers * rows
    tolerance = 5 * math.sqrt(acceptance * (1 - acceptance) / n)
    assert abs(np.mean(fraction) - acceptance) < tolerance, (np.mean(fraction), acceptance, tolerance)


@pytest.mark.parametrize("state", sorted(STATES))
def test_stored_log_prob_is_the_normalised_posterior(two_state, state):
    path, _ = two_state
    b = backend(path, state)
    chain, log_prob = b.get_chain(), b.get_log_prob()
    expected = log_posterior(state, chain)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("state", sorted(STATES))
def test_discard_thin_flat(two_state, state):
    path, _ = two_state
    walkers, steps, burn, ndim = STATES[state]
    b = backend(path, state)
    with h5py.File(path, "r") as f:
        raw_chain = f["states"][state]["chain"][...]
        raw_log_prob = f["states"][state]["log_prob"][...]
    thin = 7
    # emcee keeps rows discard + thin − 1, discard + 2 thin − 1, … below iteration.
    rows = np.arange(burn + thin - 1, steps, thin)
    flat = b.get_chain(discard=burn, thin=thin, flat=True)
    assert flat.shape == (len(rows) * walkers, ndim)
    assert np.array_equal(flat, raw_chain[rows].reshape(-1, ndim))
    flat_lp = b.get_log_prob(discard=burn, thin=thin, flat=True)
    assert np.array_equal(flat_lp, raw_log_prob[rows].reshape(-1))
    assert b.get_chain(discard=steps).shape == (0, walkers, ndim)


@pytest.mark.parametrize("state", sorted(STATES))
def test_autocorr_time_agrees_with_the_summary(two_state, state):
    path, _ = two_state
    _, steps, burn, ndim = STATES[state]
    b = backend(path, state)
    with h5py.File(path, "r") as f:
        ours = summary_of(f, state)["autocorr_time"]
        burn_rows = int(f["states"][state].attrs["burn_rows"])
    assert burn_rows == burn  # thin = 1: one stored row per iteration
    assert ours.shape == (ndim,)

    # Comparable: the summary is emcee's estimator (c = 5) on the rows after
    # the burn-in, so emcee on the same rows must give the same numbers, up to
    # the FFTs' rounding.
    tau = b.get_autocorr_time(discard=burn_rows, tol=0)
    assert tau.shape == (ndim,)
    assert np.all(np.isfinite(tau)) and np.all(tau > 0)
    np.testing.assert_allclose(ours, tau, rtol=1e-8)

    # Not the same rows: the whole chain, burn-in from a wide start included,
    # gives a different estimate; it should still be of the same size.
    tau_all = b.get_autocorr_time(tol=0)
    assert np.all(np.isfinite(tau_all)) and np.all(tau_all > 0)
    assert np.all(np.abs(tau_all - ours) < 0.3 * ours), (tau_all, ours)


# --- statistics through emcee's own diagnostics -----------------------------------

MEAN4 = np.array([1.0, -2.0, 0.5, 3.0])
SD4 = np.array([0.5, 1.0, 2.0, 0.3])
CORR4 = np.array([
    [1.0, 0.5, -0.3, 0.2],
    [0.5, 1.0, 0.1, -0.4],
    [-0.3, 0.1, 1.0, 0.25],
    [0.2, -0.4, 0.25, 1.0],
])
COV4 = CORR4 * np.outer(SD4, SD4)


def test_correlated_gaussian_mean_within_five_mcse(tmp_path):
    walkers, steps, burn = 48, 4000, 1000
    spec = tmp_path / "gauss4.toml"
    spec.write_text(f"""\
[run]
name = "gauss4"
seed = 7

[sampler]
kind = "ensemble"
walkers = {walkers}
steps = {steps}
burn = {burn}
moves = [{{ kind = "stretch", a = 2.0, weight = 1.0 }}]
init = {{ kind = "prior" }}

[[states]]
name = "gauss4"
params = ["p0", "p1", "p2", "p3"]
model = {{ kind = "gaussian", mean = {toml_list(MEAN4)}, cov = {toml_matrix(COV4)} }}
prior = {{ kind = "uniform", low = {toml_list([-50.0] * 4)}, high = {toml_list([50.0] * 4)} }}
""")
    out = run_sampo(spec, tmp_path / "gauss4.h5", threads=2)
    b = backend(out, "gauss4")
    # emcee's default tol = 50 raises AutocorrError unless the kept chain is
    # longer than 50 τ: emcee itself vouches that τ is trustworthy.
    tau = b.get_autocorr_time(discard=burn)
    samples = b.get_chain(discard=burn, flat=True)
    n = samples.shape[0]
    assert n == (steps - burn) * walkers
    ess = n / tau
    mean = samples.mean(axis=0)
    var = samples.var(axis=0, ddof=1)
    mcse = np.sqrt(var / ess)
    assert np.all(np.abs(mean - MEAN4) < 5 * mcse), (mean, MEAN4, mcse)
    # The variance too: for a Gaussian, sd(s²) ≈ σ² √(2 / ESS).
    true_var = np.diag(COV4)
    assert np.all(np.abs(var - true_var) < 5 * true_var * np.sqrt(2 / ess)), (var, true_var)


# --- reproducibility across thread counts ------------------------------------------

def test_same_seed_same_samples_with_one_or_two_threads(two_state, tmp_path):
    path2, spec_text = two_state
    spec = tmp_path / "two_state.toml"
    spec.write_text(spec_text, encoding="utf-8")
    path1 = run_sampo(spec, tmp_path / "threads1.h5", threads=1)
    other = tmp_path / "other_seed.toml"
    other.write_text(spec_text.replace(f"seed = {SEED}", f"seed = {SEED + 1}"), encoding="utf-8")
    path_other = run_sampo(other, tmp_path / "other_seed.h5", threads=2)

    with h5py.File(path1, "r") as f1, h5py.File(path2, "r") as f2, h5py.File(path_other, "r") as fo:
        # The runs really used different layouts.
        assert int(f1.attrs["threads_per_rank"]) == 1
        assert int(f2.attrs["threads_per_rank"]) == 2
        for state in STATES:
            for name in ("chain", "log_prob", "accepted"):
                a = f1["states"][state][name][...]
                b = f2["states"][state][name][...]
                assert a.shape == b.shape
                assert np.array_equal(a, b), (state, name)
                assert a.tobytes() == b.tobytes(), (state, name)
            # And the seed matters: a different seed gives different samples.
            assert not np.array_equal(f1["states"][state]["chain"][...], fo["states"][state]["chain"][...])
