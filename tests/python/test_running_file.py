"""A run's output while it is written, and after the run is killed.

The writer flushes at least every two seconds (and a task hands its rows on
at least every second), so a reader that opens ``<output>.partial`` without
file locking sees the rows written so far, with ``iteration`` saying how many
are complete; after ``kill -9`` the file keeps every row of the last flush.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from specs import SLOW

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))


def start(tmp_path):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW)
    proc = subprocess.Popen([str(SAMPO_BIN), "run", str(spec), "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, tmp_path / "slow.h5.partial"


def read_rows(partial):
    """(iteration, chain rows up to it, status) read without file locking."""
    with h5py.File(partial, "r", locking=False) as f:
        g = f["states/g"]
        it = int(g.attrs["iteration"])
        return it, g["chain"][:it], f.attrs["status"]


def wait_for_rows(partial, proc, at_least, limit=20.0):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        assert proc.poll() is None, proc.communicate()
        if partial.exists():
            try:
                it, chain, status = read_rows(partial)
            except (OSError, KeyError):
                # Caught between two flushes: try again.
                it = 0
            if it >= at_least:
                return it, chain, status
        time.sleep(0.2)
    pytest.fail(f"fewer than {at_least} rows after {limit} s")


def test_a_running_file_can_be_read_as_it_grows(tmp_path):
    proc, partial = start(tmp_path)
    try:
        first, chain, status = wait_for_rows(partial, proc, 1)
        assert status == "running"
        assert chain.shape == (first, 16, 2) and np.all(np.isfinite(chain))
        second, chain, _ = wait_for_rows(partial, proc, first + 1)
        assert second > first
        assert np.all(np.isfinite(chain))
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_keeps_every_row_of_the_last_flush(tmp_path):
    proc, partial = start(tmp_path)
    seen, _, _ = wait_for_rows(partial, proc, 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with h5py.File(partial, "r") as f:
        g = f["states/g"]
        it = int(g.attrs["iteration"])
        assert it >= seen
        assert g["chain"].shape[0] >= it
        assert np.all(np.isfinite(g["chain"][:it])) and np.all(np.isfinite(g["log_prob"][:it]))
        assert f.attrs["status"] == "running"


def summary_json(path):
    """`sampo summary --format json` of a file, parsed."""
    proc = subprocess.run([str(SAMPO_BIN), "summary", str(path), "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_sampo_summary_reads_a_growing_and_a_killed_file(tmp_path):
    proc, partial = start(tmp_path)
    try:
        wait_for_rows(partial, proc, 1)
        with h5py.File(partial, "r", locking=False) as f:
            burn_rows = int(f["states/g"].attrs["burn_rows"])
        wait_for_rows(partial, proc, burn_rows + 100)
        first = summary_json(partial)
        assert first["status"] == "running"
        (state,) = first["states"]
        assert state["state"] == "g" and state["chains"] == 16
        assert state["rows"] >= burn_rows + 100
        assert state["draws"] == state["rows"] - burn_rows
        assert [p["param"] for p in state["params"]] == ["x0", "x1"]
        assert all(p["mean"] is not None and p["ess_bulk"] > 0 for p in state["params"])
        it, _, _ = wait_for_rows(partial, proc, state["rows"] + 1)
        second = summary_json(partial)["states"][0]
        assert second["rows"] > state["rows"]
    finally:
        proc.kill()
        proc.wait()
    # Killed: what the file holds is summarised, the same as h5py reads it.
    with h5py.File(partial, "r") as f:
        g = f["states/g"]
        it = int(g.attrs["iteration"])
        x = g["chain"][burn_rows:it, :, 0]
    after = summary_json(partial)["states"][0]
    assert after["rows"] == it
    assert np.isclose(after["params"][0]["mean"], x.mean(), rtol=1e-12, atol=1e-12)
