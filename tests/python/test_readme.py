"""The README's first run and its reading examples, run as the README shows them.

Every ```python block of README.md runs, in order and in one namespace, in a
folder holding a fresh ``quickstart.h5`` (``configs/quickstart.toml``, run by
``SAMPO_BIN``), and what the blocks leave behind is checked against the
quickstart's exact answers: the Gaussian's means (0, 1) and the Rosenbrock
state's (0, 1/20, 1/10 + 3/400, …), within 5 of the file's own MCSEs. The
README's claims about the summary are checked too: the quickstart flags
nothing; its short variant (the README's ``short.h5`` command) is flagged;
``--resume`` takes the short run to the full run's file, bit for bit.
"""

import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))
README = REPO / "README.md"
QUICKSTART = REPO / "configs" / "quickstart.toml"
sys.path.insert(0, str(REPO / "python"))

warnings.filterwarnings("ignore", category=FutureWarning)  # ArviZ 0.2x announces 1.0

# The quickstart's targets, exactly: gauss is N((0, 1), [[1, .5], [.5, 2]]);
# rosenbrock (a = 10, b = 5, mu = 0) has a ~ N(0, 1/20), b | a ~ N(a², 1/10),
# c | b ~ N(b², 1/10), d | c ~ N(c², 1/10), so E b = E a² = 1/20,
# E c = 1/10 + E a⁴ = 1/10 + 3/400, E d = 1/10 + E b⁴ = 1/10 + E a⁸ + 6/10 E a⁴ + 3/100.
# (Their N(0, 10²) prior moves these by less than 1e-3 of an MCSE's worth.)
VAR_A = 1 / 20
EXACT = {
    "gauss": {"x": 0.0, "y": 1.0},
    "rosenbrock": {
        "a": 0.0,
        "b": VAR_A,
        "c": 0.1 + 3 * VAR_A**2,
        "d": 0.1 + 105 * VAR_A**4 + 0.6 * 3 * VAR_A**2 + 0.03,
    },
}


def sampo_cmd(*args, cwd):
    return subprocess.run([str(SAMPO_BIN), *args], cwd=cwd, capture_output=True, text=True)


def readme_blocks(lang):
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    o = sampo_cmd("run", str(QUICKSTART), "--force", "-q", cwd=d)
    assert o.returncode == 0, o.stderr
    assert (d / "quickstart.h5").exists()
    return d


def within_mcse(run, state, exact):
    table = run.summary(state)
    for param, value in exact.items():
        mean, mcse = table.loc[param, "mean"], table.loc[param, "mcse_mean"]
        assert abs(mean - value) < 5 * mcse, f"{state}.{param}: {mean} ± {mcse}, exact {value}"
    return table


def test_the_quickstart_is_not_flagged_and_hits_the_exact_means(quickstart):
    o = sampo_cmd("summary", "quickstart.h5", cwd=quickstart)
    assert o.returncode == 0, o.stderr
    assert "state gauss" in o.stdout and "state rosenbrock" in o.stdout
    assert "flagged" not in o.stdout and ">1.01" not in o.stdout, o.stdout
    import sampo

    run = sampo.open(quickstart / "quickstart.h5")
    for state, exact in EXACT.items():
        table = within_mcse(run, state, exact)
        assert (table["rhat"] <= 1.01).all() and (table["ess_bulk"] >= 400).all()


def test_the_python_blocks_run_and_give_sane_values(quickstart, monkeypatch, capsys):
    monkeypatch.chdir(quickstart)
    blocks = readme_blocks("python")
    assert len(blocks) >= 3, "the README's reading section has lost its examples"
    ns = {}
    for k, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {k + 1}", "exec"), ns)
        except Exception as e:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"README python block {k + 1} failed: {e!r}\n{block}")
    printed = capsys.readouterr().out
    # The one-liner printed gauss's summary: a row per parameter.
    assert re.search(r"^x\s", printed, flags=re.M) and re.search(r"^y\s", printed, flags=re.M)

    import sampo

    run = ns["run"]
    assert isinstance(run, sampo.Run) and run.complete and run.kind == "ensemble"
    assert run.states == ["gauss", "rosenbrock"]
    # `run.chain(..., flat=True)`: the Rosenbrock state's draws after its burn-in.
    x = ns["x"]
    assert x.shape == (18000 * 32, 5)
    summary = run.summary("rosenbrock")
    for k, p in enumerate("abcd"):
        assert abs(x[:, k].mean() - EXACT["rosenbrock"][p]) < 5 * summary.loc[p, "mcse_mean"]
    # ArviZ: the state's parameters, and the means of the known answer.
    idata = ns["idata"]
    assert set(idata.posterior.data_vars) == {"x", "y"}
    assert idata.posterior.sizes["chain"] == 32 and idata.posterior.sizes["draw"] == 9000
    table = ns["table"]
    assert list(table.index) == ["x", "y"]
    for p, value in EXACT["gauss"].items():
        assert abs(table.loc[p, "mean"] - value) < 5 * table.loc[p, "mcse_mean"]
        assert table.loc[p, "r_hat"] <= 1.01
    # emcee: the same draws as `run.chain`, and τ in steps.
    draws = ns["draws"]
    np.testing.assert_array_equal(draws, run.chain("gauss", discard=1000, flat=True))
    assert draws.shape == (9000 * 32, 2)
    np.testing.assert_allclose(draws.mean(axis=0), [0.0, 1.0], atol=0.05)
    np.testing.assert_allclose(np.cov(draws.T), [[1.0, 0.5], [0.5, 2.0]], rtol=0.05)
    tau = ns["tau"]
    assert tau.shape == (2,) and np.all((tau > 1) & (tau < 200))
    # h5py: the names and the rows after burn-in.
    assert ns["params"] == ["a", "b", "c", "d", "e"]
    assert ns["chain"].shape == (18000, 32, 5)
    with h5py.File(quickstart / "quickstart.h5", "r") as f:
        assert f["states/rosenbrock"].attrs["burn_rows"] == 2000


def test_the_short_run_is_flagged_and_resume_completes_it(quickstart):
    # The README's command for the flagged example, as written there.
    (cmd,) = [b for b in readme_blocks("sh") if "short.h5" in b]
    argv = shlex.split(cmd.replace("\\\n", " "))
    assert argv[:2] == ["sampo", "run"], argv
    argv = [str(SAMPO_BIN)] + [str(QUICKSTART) if a == "configs/quickstart.toml" else a for a in argv[1:]]
    o = subprocess.run(argv + ["-q"], cwd=quickstart, capture_output=True, text=True)
    assert o.returncode == 0, o.stderr
    o = sampo_cmd("summary", "short.h5", "--state", "rosenbrock", cwd=quickstart)
    assert "R-hat>1.01" in o.stdout and "do not trust these estimates yet" in o.stdout, o.stdout

    # "Run longer": the README's --resume command extends it to the full run's file.
    text = README.read_text(encoding="utf-8")
    m = re.search(r"`sampo run\s+configs/quickstart\.toml -o short\.h5 --resume`", text)
    assert m, "the README no longer says how to extend the short run"
    o = sampo_cmd("run", str(QUICKSTART), "-o", "short.h5", "--resume", "-q", cwd=quickstart)
    assert o.returncode == 0, o.stderr
    o = sampo_cmd("summary", "short.h5", cwd=quickstart)
    assert "flagged" not in o.stdout, o.stdout
    with h5py.File(quickstart / "short.h5", "r") as a, h5py.File(quickstart / "quickstart.h5", "r") as b:
        for name in ("chain", "log_prob", "accepted"):
            np.testing.assert_array_equal(a[f"states/rosenbrock/{name}"][...], b[f"states/rosenbrock/{name}"][...])
