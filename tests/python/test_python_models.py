"""Python models (``model = { kind = "python", … }``) run by sampo's embedded
interpreter, in the environment of this test's Python (VIRTUAL_ENV).

A Python Gaussian written with the built-in model's arithmetic must give the
built-in model's samples bit for bit, for every sampling kind, scalar and
vectorised, locally and under ``mpiexec -n 2``; SMC with it must find the
closed-form evidence; a numpy Rosenbrock must recover its known means; and
every way a user's model can fail must be reported with its traceback, state
and point.
"""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from embedded import ENV, SAMPO_BIN, assert_same_bits, datasets, run

MODELS = Path(__file__).resolve().parent / "models"

BUILTIN = 'model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[4.0, 0.0], [0.0, 0.25]] }'
CONFIG = "config = { mean = [1.0, -1.0], var = [4.0, 0.25] }"
SCALAR = f'model = {{ kind = "python", file = "{MODELS}/gaussian.py", {CONFIG} }}'
VECTORISED = (
    f'model = {{ kind = "python", file = "{MODELS}/gaussian.py", '
    f'function = "log_likelihood_many", vectorized = true, {CONFIG} }}'
)
PRIOR = 'prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }'

SAMPLERS = {
    "ensemble": "walkers = 16\nsteps = 300\nburn = 100",
    "chains": "chains = 3\nsteps = 400\nburn = 100",
    "smc": "particles = 400",
}


def spec(kind, model, states=("g",), extra=""):
    text = f"[run]\nseed = 11\n\n[sampler]\nkind = \"{kind}\"\n{SAMPLERS[kind]}\n{extra}\n"
    for name in states:
        text += f'\n[[states]]\nname = "{name}"\nparams = ["a", "b"]\n{model}\n{PRIOR}\n'
    return text


@pytest.mark.parametrize("kind", ["ensemble", "chains", "smc"])
def test_a_python_gaussian_gives_the_builtin_samples_bit_for_bit(tmp_path, kind):
    run(tmp_path, "builtin", spec(kind, BUILTIN))
    run(tmp_path, "scalar", spec(kind, SCALAR))
    assert_same_bits(tmp_path / "builtin.h5", tmp_path / "scalar.h5")
    run(tmp_path, "vectorised", spec(kind, VECTORISED))
    assert_same_bits(tmp_path / "builtin.h5", tmp_path / "vectorised.h5")


def test_python_models_are_bit_identical_under_mpi(tmp_path):
    states = ("g1", "g2", "g3")
    run(tmp_path, "builtin", spec("ensemble", BUILTIN, states))
    run(tmp_path, "scalar", spec("ensemble", SCALAR, states), mpi=2)
    assert_same_bits(tmp_path / "builtin.h5", tmp_path / "scalar.h5")
    run(tmp_path, "vectorised", spec("ensemble", VECTORISED, states), mpi=2)
    assert_same_bits(tmp_path / "builtin.h5", tmp_path / "vectorised.h5")


def test_smc_with_a_python_likelihood_finds_the_closed_form_evidence(tmp_path):
    # A normalised Gaussian likelihood (means 1 and -1, sds 2 and 0.5) under
    # a uniform prior on [-10, 10]^2: Z = (mass of the Gaussian in the box)
    # / 400, the mass known to 1e-6 from the normal CDF.
    run(tmp_path, "smc", spec("smc", VECTORISED).replace("particles = 400", "particles = 2000"))
    with h5py.File(tmp_path / "smc.h5", "r") as f:
        g = f["smc/g"]
        log_z, err = g.attrs["log_evidence"], g.attrs["log_evidence_err"]
    from math import erf, log, sqrt

    def mass(mu, sd):
        return 0.5 * (erf((10 - mu) / (sd * sqrt(2))) - erf((-10 - mu) / (sd * sqrt(2))))

    exact = log(mass(1.0, 2.0) * mass(-1.0, 0.5) / 400.0)
    assert 0 < err < 0.5
    assert abs(log_z - exact) < 5 * err, (log_z, exact, err)


def test_the_trans_conceptual_stage_runs_python_models(tmp_path):
    text = spec("ensemble", VECTORISED, ("g1", "g2")) + "\n[transc]\nwalkers = 16\nsteps = 400\n"
    builtin = spec("ensemble", BUILTIN, ("g1", "g2")) + "\n[transc]\nwalkers = 16\nsteps = 400\n"
    run(tmp_path, "python", text)
    run(tmp_path, "builtin", builtin)
    assert_same_bits(tmp_path / "builtin.h5", tmp_path / "python.h5")


ROSENBROCK = '''
import numpy as np

def setup(config):
    return float(config["a"]), float(config["b"]), float(config["mu"])

def log_likelihood(x, c):
    a, b, mu = c
    return -a * (x[:, 0] - mu) ** 2 - b * (x[:, 1] - x[:, 0] ** 2) ** 2
'''


def test_a_numpy_rosenbrock_recovers_its_means(tmp_path):
    # x1 ~ N(mu, 1/(2a)) and x2 | x1 ~ N(x1², 1/(2b)): E x1 = mu, E x2 = mu² + 1/(2a).
    (tmp_path / "rosen.py").write_text(ROSENBROCK)
    a, b, mu = 1.0, 1.0, 1.0
    text = (
        "[run]\nseed = 5\n[sampler]\nwalkers = 32\nsteps = 4000\nburn = 1000\n"
        '[[states]]\nname = "r"\nparams = ["x1", "x2"]\n'
        f'model = {{ kind = "python", file = "rosen.py", vectorized = true, '
        f"config = {{ a = {a}, b = {b}, mu = {mu} }} }}\n"
        'prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 60.0] }\n'
    )
    run(tmp_path, "rosen", text)
    import json

    out = subprocess.run(
        [str(SAMPO_BIN), "summary", "rosen.h5", "--format", "json"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, check=True,
    )
    params = json.loads(out.stdout)["states"][0]["params"]
    exact = {"x1": mu, "x2": mu * mu + 1 / (2 * a)}
    for p in params:
        gap = abs(p["mean"] - exact[p["param"]])
        assert gap < 5 * p["mcse_mean"], (p["param"], p["mean"], exact[p["param"]], p["mcse_mean"])


def broken(mode, function="log_likelihood", vectorized=False):
    return (
        f'model = {{ kind = "python", file = "{MODELS}/broken.py", function = "{function}", '
        f'vectorized = {str(vectorized).lower()}, config = {{ mode = "{mode}" }} }}'
    )


def test_an_exception_in_setup_stops_check_and_run_with_its_traceback(tmp_path):
    text = spec("ensemble", broken("setup-raises"))
    (tmp_path / "s.toml").write_text(text)
    for command in ["check", "run"]:
        done = subprocess.run(
            [str(SAMPO_BIN), command, "s.toml"], cwd=tmp_path, env=ENV,
            capture_output=True, text=True,
        )
        assert done.returncode == 2, done.stderr
        for needle in ["state `g`", "Traceback", "ValueError: cannot read obs.csv", "broken.py"]:
            assert needle in done.stderr, (needle, done.stderr)
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.partial").exists()


def test_an_exception_in_an_evaluation_names_state_point_and_traceback(tmp_path):
    done = run(tmp_path, "e", spec("ensemble", broken("raises")), check=False)
    assert done.returncode == 1, done.stderr
    for needle in ["`g`", "walker", "ZeroDivisionError: bad parameter", "Traceback", "at parameters"]:
        assert needle in done.stderr, (needle, done.stderr)


def test_an_evaluation_that_never_returns_fails_the_job_with_its_point(tmp_path):
    """A model call that never returns (here: x > 0.5 sleeps for ever) ends
    the check of the start points with exit 2, and a run with exit 1, each
    naming the call and its point; the run's file says why it failed."""
    limit = "[parallel]\nevaluation_timeout = 2\n"
    done = run(tmp_path, "c", limit + spec("ensemble", broken("hangs")), check=False)
    assert done.returncode == 2, done.stderr
    for needle in ["the Python function", "has not returned for", "while the spec was checked"]:
        assert needle in done.stderr, (needle, done.stderr)
    # Started far from x > 0.5, the walkers get there while sampling.
    start = 'init = { kind = "ball", center = [-3.0, 0.0], radius = 0.1 }'
    done = run(tmp_path, "h", limit + spec("ensemble", broken("hangs"), extra=start), check=False)
    assert done.returncode == 1, done.stderr
    for needle in ["the Python function", "has not returned for", "at parameters [", "evaluation_timeout"]:
        assert needle in done.stderr, (needle, done.stderr)
    with h5py.File(tmp_path / "h.h5.partial", "r", locking=False) as f:
        assert f.attrs["status"].startswith("failed: "), f.attrs["status"]


def test_a_failure_on_one_rank_ends_the_job_with_its_message(tmp_path):
    done = run(tmp_path, "e", spec("ensemble", broken("raises"), ("g1", "g2", "g3")),
               mpi=2, check=False)
    assert done.returncode != 0
    assert "ZeroDivisionError: bad parameter" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "model, needle",
    [
        (broken("string"), "returned 'high' (type str); it must return one number"),
        (broken("short", "vectorised", True), "a vectorised model returns one number per point"),
        (broken("", "no_such_function"), "has no function `no_such_function`"),
        (
            'model = { kind = "python", file = "nowhere.py" }',
            "no Python file",
        ),
        (
            f'model = {{ kind = "python", file = "{MODELS}/needs_missing.py" }}',
            "No module named 'sampo_no_such_package'",
        ),
    ],
)
def test_a_wrong_model_is_a_located_error(tmp_path, model, needle):
    (tmp_path / "w.toml").write_text(spec("ensemble", model))
    done = subprocess.run(
        [str(SAMPO_BIN), "run", "w.toml", "-q"], cwd=tmp_path, env=ENV,
        capture_output=True, text=True,
    )
    assert done.returncode in (1, 2), done.stderr
    assert needle in done.stderr, done.stderr
    assert "state `g`" in done.stderr or "`g`" in done.stderr, done.stderr


def test_an_import_error_shows_the_environment_used(tmp_path):
    model = f'model = {{ kind = "python", file = "{MODELS}/needs_missing.py" }}'
    (tmp_path / "w.toml").write_text(spec("ensemble", model))
    done = subprocess.run(
        [str(SAMPO_BIN), "check", "w.toml"], cwd=tmp_path, env=ENV,
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert f"environment: {sys.prefix}" in done.stderr, done.stderr


def test_nan_counts_as_minus_infinity(tmp_path):
    done = run(tmp_path, "n", spec("ensemble", broken("nan")))
    assert "returned NaN (treated as −∞)" in done.stderr, done.stderr
    with h5py.File(tmp_path / "n.h5", "r") as f:
        chain = f["states/g/chain"][...]
        log_prob = f["states/g/log_prob"][...]
    # A walker that started where the model gives NaN stays there at −∞
    # until it moves; no walker ever moves to a point where a > 0.
    finite = np.isfinite(log_prob)
    assert finite.any()
    assert np.all(chain[..., 0][finite] <= 0.0)


def test_check_says_python_models_run_one_thread_per_rank(tmp_path):
    (tmp_path / "t.toml").write_text(spec("ensemble", SCALAR))
    done = subprocess.run(
        [str(SAMPO_BIN), "check", "t.toml", "--threads", "2"], cwd=tmp_path, env=ENV,
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "Python" in out and "mpiexec -n" in out, out


BATCH = """[run]
seed = 4
[sampler]
kind = "batch"
design = {{ kind = "random" }}
items = 500
{extra}
[[states]]
name = "d"
params = ["amplitude", "tau"]
{model}
prior = {{ kind = "uniform", low = [0.5, 1.0], high = [2.0, 10.0] }}
"""
TIMES = "[0.5, 1.0, 2.0, 4.0]"


def test_a_python_forward_model_gives_the_builtin_outputs_bit_for_bit(tmp_path):
    builtin = f'model = {{ kind = "decay", times = {TIMES} }}\noutputs = ["t0.5", "t1", "t2", "t4"]'
    python = (
        f'model = {{ kind = "python", file = "{MODELS}/decay.py", config = {{ times = {TIMES} }} }}'
    )
    run(tmp_path, "builtin", BATCH.format(extra="", model=builtin))
    run(tmp_path, "python", BATCH.format(extra="validate = 3", model=python))
    run(tmp_path, "mpi", BATCH.format(extra="chunk = 50", model=python), mpi=2)
    for other in ["python", "mpi"]:
        a, b = datasets(tmp_path / "builtin.h5"), datasets(tmp_path / f"{other}.h5")
        for name in ["batch/d/inputs", "batch/d/outputs", "batch/d/status"]:
            assert np.array_equal(a[name].view(np.uint8), b[name].view(np.uint8)), (other, name)
    with h5py.File(tmp_path / "python.h5", "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["batch/d"].attrs["outputs"]]
    assert names == ["t0.5", "t1", "t2", "t4"]


def test_a_failing_python_forward_model_is_recorded_with_its_traceback(tmp_path):
    python = (
        f'model = {{ kind = "python", file = "{MODELS}/decay.py", function = "failing", '
        f"config = {{ times = {TIMES} }} }}"
    )
    run(tmp_path, "rec", BATCH.format(extra='on_error = "record"', model=python))
    with h5py.File(tmp_path / "rec.h5", "r") as f:
        status = f["batch/d/status"][...]
        inputs = f["batch/d/inputs"][...]
        assert np.array_equal(status != 0, inputs[:, 0] > 1.5)
    done = run(tmp_path, "fail", BATCH.format(extra="", model=python), check=False)
    assert done.returncode == 1
    for needle in ["RuntimeError: solver diverged", "Traceback", "item"]:
        assert needle in done.stderr, (needle, done.stderr)


BLAS_PROBE = '''
import os

def setup(config):
    names = ["OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"]
    with open(config["out"], "w") as f:
        f.write(" ".join(os.environ.get(n, "unset") for n in names))

def log_likelihood(x):
    return -0.5 * float(x[0] ** 2 + x[1] ** 2)
'''


def test_numpys_blas_runs_one_thread_unless_the_user_says_otherwise(tmp_path, monkeypatch):
    # sampo's ranks and threads are the parallelism: BLAS pools would only
    # oversubscribe the cores, so their sizes default to 1; a value set is kept.
    (tmp_path / "probe.py").write_text(BLAS_PROBE)
    model = f'model = {{ kind = "python", file = "probe.py", config = {{ out = "{tmp_path}/blas.txt" }} }}'
    text = spec("ensemble", model)
    for name in ["OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"]:
        monkeypatch.delitem(ENV, name, raising=False)
    run(tmp_path, "default", text)
    assert (tmp_path / "blas.txt").read_text() == "1 1 1 1"
    monkeypatch.setitem(ENV, "OPENBLAS_NUM_THREADS", "3")
    run(tmp_path, "set", text)
    assert (tmp_path / "blas.txt").read_text() == "3 1 1 1"
