"""The trans-conceptual results read with h5py, and checked with numpy.

``/transc`` (docs/output.md, docs/transc.md): the walkers' state chains, their visit
counts, the state probabilities and the fitted pseudo-priors. What a user
recomputes from the stored chains must be what sampo reports.
"""

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))


def run(tmp_path, *sets):
    out = tmp_path / "transc.h5"
    args = [str(SAMPO_BIN), "run", str(REPO / "configs" / "transc.toml"), "-q", "-o", str(out)]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True, cwd=tmp_path)
    return out


def test_the_state_chains_give_the_reported_probabilities(tmp_path):
    path = run(tmp_path, "sampler.steps=1500", "transc.steps=4000")
    with h5py.File(path, "r") as f:
        t = f["transc"]
        names = [s.decode() if isinstance(s, bytes) else s for s in t.attrs["states"]]
        assert names == ["s1", "s2", "s3"]
        assert t.attrs["method"] in ("resample", b"resample")
        walkers, burn = int(t.attrs["walkers"]), int(t.attrs["burn"])
        state = t["state"][...]
        assert state.shape == (walkers, 4000 - burn)
        # With thin = 1 every step after burn-in is stored: its shares are
        # the reported probabilities, exactly.
        shares = np.array([(state == k).mean() for k in range(3)])
        np.testing.assert_allclose(t["probability"][...], shares, rtol=0, atol=1e-15)
        per_walker = np.array([[(row == k).mean() for k in range(3)] for row in state])
        err = per_walker.std(axis=0, ddof=1) / np.sqrt(walkers)
        np.testing.assert_allclose(t["probability_err"][...], err, rtol=1e-12)
        assert np.allclose(t["visits"][...].sum(axis=(1, 2)), 4000 - burn)
        # Each pseudo-prior is the mean and covariance of the state's samples
        # after the first stage's burn-in.
        for name in names:
            q = t["pseudo_prior"][name]
            g = f["states"][name]
            b = int(q.attrs["burn_rows"])
            x = g["chain"][b:].reshape(-1, g["chain"].shape[-1])
            assert int(q.attrs["members"]) == x.shape[0]
            np.testing.assert_allclose(q["means"][0], x.mean(axis=0), rtol=1e-10)
            np.testing.assert_allclose(
                q["covs"][0], np.cov(x.T, bias=True), rtol=1e-6, atol=1e-12
            )
