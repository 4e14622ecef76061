"""Processes written in Python for ``kind = "paths"`` (``process = { kind =
"python", … }``), run by sampo's embedded interpreter.

Each path's generator is seeded from the path's own stream, so a path
recomputed alone in numpy (``sampo.path_generator``) is the stored path,
every layout and a paused run give the same file bit for bit, a random
walk's moments match the exact ones within 5 standard errors, and every
way a user's process can fail is reported with its traceback, state and
path. ``[python] executable`` names the environment instead of
VIRTUAL_ENV.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from embedded import ENV, REPO, SAMPO_BIN, assert_same_bits, run

MODELS = Path(__file__).resolve().parent / "models"
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(MODELS))

import processes  # noqa: E402
import sampo  # noqa: E402

FILE = MODELS / "processes.py"


def process(function, config, extra=""):
    return (
        f'process = {{ kind = "python", file = "{FILE}", function = "{function}", '
        f"config = {config}{extra} }}"
    )


WALK = process("walk", "{ p = 0.6 }", ", integer = true")
GAUSSIAN = process("gaussian", "{ x0 = 1.5, drift = 0.1, sigma = 0.7 }", ", dt = 0.5")


def spec(states, paths=500, steps=40, record="both", seed=7, extra=""):
    text = (
        f'[run]\nseed = {seed}\n\n[sampler]\nkind = "paths"\npaths = {paths}\n'
        f'steps = {steps}\nrecord = "{record}"\n{extra}\n'
    )
    for name, proc, more in states:
        text += f'\n[[states]]\nname = "{name}"\n{proc}\n{more}\n'
    return text


STATES = [("walk", WALK, "hitting = [4]"), ("gauss", GAUSSIAN, "")]


def test_every_stored_path_is_what_numpy_gives_for_its_seed(tmp_path):
    run(tmp_path, "s", spec(STATES, paths=300))
    with h5py.File(tmp_path / "s.h5", "r") as f:
        walks = f["paths/walk/states"][...]
        gauss = f["paths/gauss/states"][...]
        times = f["paths/gauss/times"][...]
        hitting = f["paths/walk/hitting"][0]
    assert walks.dtype == np.int64 and gauss.dtype == np.float64
    assert np.array_equal(times, 0.5 * np.arange(41))
    walk_config = {"p": 0.6}
    gauss_config = {"x0": 1.5, "drift": 0.1, "sigma": 0.7}
    for path in (0, 1, 137, 299):
        mine = processes.walk(sampo.path_generator(7, 0, path), 40, walk_config)
        assert np.array_equal(mine, walks[path]), path
        mine = processes.gaussian(sampo.path_generator(7, 1, path), 40, gauss_config)
        assert np.array_equal(mine.view(np.uint64), gauss[path].view(np.uint64)), path
    # Hitting steps are those of the stored paths (every step is recorded).
    hit = [np.flatnonzero(w == 4) for w in walks]
    steps = np.array([h[0] for h in hit if h.size])
    assert hitting[0] == steps.size
    assert hitting[1] == pytest.approx(steps.mean(), rel=1e-12)


def test_the_file_is_the_same_on_every_layout_and_across_a_pause(tmp_path):
    text = spec(STATES, paths=1300, extra="chunk = 100")
    run(tmp_path, "one", text)
    run(tmp_path, "threads", text, "--threads", "2")
    assert_same_bits(tmp_path / "one.h5", tmp_path / "threads.h5")
    run(tmp_path, "ranks", text, mpi=2)
    assert_same_bits(tmp_path / "one.h5", tmp_path / "ranks.h5")
    # A run asking for more paths goes on from a complete one (of at least
    # the 1024 paths that set the histograms' bins).
    run(tmp_path, "grown", spec(STATES, paths=1050, extra="chunk = 100"))
    run(tmp_path, "grown", text, "--resume")
    assert_same_bits(tmp_path / "one.h5", tmp_path / "grown.h5")


def test_a_signalled_run_resumes_to_the_same_bits(tmp_path):
    text = spec([("gauss", GAUSSIAN, "")], paths=60000, steps=200, record="statistics",
                extra="chunk = 500")
    run(tmp_path, "whole", text)
    (tmp_path / "p.toml").write_text(text)
    child = subprocess.Popen(
        [str(SAMPO_BIN), "run", "p.toml", "-q", "-o", "p.h5"],
        cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    partial = tmp_path / "p.h5.partial"
    deadline = time.time() + 60
    while not partial.exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.4)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 75, err
    run(tmp_path, "p", text, "--resume")
    assert_same_bits(tmp_path / "whole.h5", tmp_path / "p.h5")


def test_a_python_random_walk_has_the_exact_moments(tmp_path):
    n, steps, p = 20000, 100, 0.6
    run(tmp_path, "s", spec([("walk", WALK, "")], paths=n, steps=steps, record="statistics",
                            seed=3))
    with h5py.File(tmp_path / "s.h5", "r") as f:
        stats = f["paths/walk/statistics"][...]
    for t in (1, 10, 100):
        mean, sd, se = stats[t]
        assert abs(mean - t * (2 * p - 1)) < 5 * se, (t, mean, se)
        var = 4 * p * (1 - p) * t
        # The sample variance's standard error, sqrt((mu4 - var^2) / n): the
        # fourth central moment of a sum of t steps 2B - 1, B ~ Bernoulli(p),
        # is 3 var^2 plus t times the fourth cumulant of a step.
        mu4 = 3 * var**2 + t * 16 * p * (1 - p) * (1 - 6 * p * (1 - p))
        assert abs(sd**2 - var) < 5 * np.sqrt((mu4 - var**2) / n), (t, sd**2, var)


def broken(mode, function="broken"):
    return [("s", process(function, f'{{ mode = "{mode}" }}'), "")]


@pytest.mark.parametrize(
    "mode, function, needles",
    [
        ("setup-raises", "broken", ["ValueError: cannot read rates.csv", "Traceback", "state `s`"]),
        ("none", "simulat", ["has no function `simulat`", "state `s`"]),
    ],
)
def test_a_process_that_cannot_be_set_up_stops_check_and_run(tmp_path, mode, function, needles):
    text = spec(broken(mode, function), paths=10)
    for command in ("check", "run"):
        done = run(tmp_path, "s", text, command=command, check=False)
        assert done.returncode == 2, done.stderr
        for needle in needles + ["s.toml:"]:
            assert needle in done.stderr, (needle, done.stderr)
    assert not (tmp_path / "s.h5").exists()


def test_a_missing_file_is_a_located_error(tmp_path):
    text = spec([("s", 'process = { kind = "python", file = "nowhere.py" }', "")], paths=10)
    done = run(tmp_path, "s", text, command="check", check=False)
    assert done.returncode == 2
    assert "s.toml:" in done.stderr and "no Python file" in done.stderr, done.stderr
    assert "nowhere.py" in done.stderr


@pytest.mark.parametrize(
    "mode, needles",
    [
        ("raises", ["ZeroDivisionError: a rate of zero", "Traceback", "processes.py"]),
        ("short", ["returned an array of shape (40,)", "41 numbers"]),
        ("string", ["returned values of dtype <U6"]),
        ("matrix", ["returned an array of shape (1, 41)"]),
        ("nan", ["returned NaN at step 3"]),
    ],
)
def test_a_failing_path_fails_the_run_with_state_and_path(tmp_path, mode, needles):
    done = run(tmp_path, "s", spec(broken(mode), paths=50), check=False)
    assert done.returncode == 1, done.stderr
    for needle in needles + ["state `s`", "path ", "`broken` in processes.py", "seed 7"]:
        assert needle in done.stderr, (needle, done.stderr)


def test_an_integer_process_must_return_integers(tmp_path):
    proc = process("gaussian", "{ x0 = 1.5, drift = 0.1, sigma = 0.7 }", ", integer = true")
    done = run(tmp_path, "s", spec([("s", proc, "")], paths=10), check=False)
    assert done.returncode == 1
    assert "returned values of dtype float64" in done.stderr, done.stderr
    assert "integers (integer = true)" in done.stderr, done.stderr


def test_the_interpreter_named_in_the_spec_supplies_the_packages(tmp_path):
    env = dict(ENV)
    env.pop("VIRTUAL_ENV")
    # numpy is in this environment only, not in the system's Python.
    exe = Path(sys.prefix) / "bin" / "python"
    text = f'[python]\nexecutable = "{exe}"\n\n' + spec(STATES, paths=100)
    run(tmp_path, "named", text, env=env)
    run(tmp_path, "active", spec(STATES, paths=100))
    assert_same_bits(tmp_path / "active.h5", tmp_path / "named.h5")
    # Every rank asks the interpreter, with nothing activated.
    run(tmp_path, "ranks", text, env=env, mpi=2)
    assert_same_bits(tmp_path / "active.h5", tmp_path / "ranks.h5")
    # An import error says which environment was used.
    (tmp_path / "needs.py").write_text("import not_a_package_here\n\ndef simulate(rng, steps):\n    pass\n")
    proc = 'process = { kind = "python", file = "needs.py" }'
    text = f'[python]\nexecutable = "{exe}"\n\n' + spec([("s", proc, "")], paths=10)
    done = run(tmp_path, "needs", text, env=env, command="check", check=False)
    assert done.returncode == 2
    assert "No module named 'not_a_package_here'" in done.stderr, done.stderr
    assert f"[python] executable = {exe}" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "executable, needle",
    [
        ("no/such/python", "does not exist"),
        ("{models}", "is not a file"),
        ("{models}/processes.py", "is not executable"),
        ("/bin/true", "did not answer as a Python interpreter does"),
    ],
)
def test_a_bad_interpreter_is_a_located_error(tmp_path, executable, needle):
    executable = executable.format(models=MODELS)
    text = f'[python]\nexecutable = "{executable}"\n\n' + spec(STATES, paths=10)
    done = run(tmp_path, "s", text, command="check", check=False)
    assert done.returncode == 2, done.stderr
    assert "s.toml:2:" in done.stderr and "python.executable" in done.stderr, done.stderr
    assert needle in done.stderr, done.stderr
