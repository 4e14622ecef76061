"""The smc kind's results read with h5py and ArviZ, and recomputed with numpy.

``/smc/<state>`` (docs/smc.md, "Output"): every particle kept with its iteration and
group, the schedule (β and log Z(β) per iteration and group), each group's
log Z, the normalised final weights and an equally weighted draw. What a user
recomputes from the stored particles and schedule must be what sampo reports.
"""

import os
import subprocess
import warnings
from pathlib import Path

import h5py
import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)  # ArviZ 0.2x announces 1.0
import arviz as az  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))


def logsumexp(v, axis=None):
    m = np.max(v, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(v - m), axis=axis))


def test_the_stored_particles_give_the_reported_evidence(tmp_path):
    out = tmp_path / "smc.h5"
    args = [str(SAMPO_BIN), "run", str(REPO / "configs" / "smc.toml"), "-q", "-o", str(out)]
    subprocess.run(args, check=True, cwd=tmp_path)
    with h5py.File(out, "r") as f:
        g = f["smc/gauss"]
        groups = int(g.attrs["groups"])
        log_l = g["log_likelihood"][...]
        iteration = g["iteration"][...]
        group = g["group"][...]
        beta, log_z_t = g["beta"][...], g["log_z"][...]
        assert beta.shape == log_z_t.shape and beta.shape[1] == groups
        log_w = np.empty_like(log_l)
        group_log_z = []
        for k in range(groups):
            mine = group == k
            its = iteration[mine]
            ran = np.flatnonzero(~np.isnan(beta[:, k]))
            assert np.array_equal(np.unique(its), ran)
            n = mine.sum()
            counts = np.array([(its == t).sum() for t in ran])
            # The balance heuristic over the group's own iterations, with
            # β log L = 0 at β = 0.
            tempered = np.where(beta[ran, k][None, :] == 0.0, 0.0,
                                beta[ran, k][None, :] * log_l[mine][:, None])
            mixture = logsumexp(np.log(counts / n)[None, :] + tempered - log_z_t[ran, k][None, :],
                                axis=1)
            w = log_l[mine] - mixture
            group_log_z.append(logsumexp(w) - np.log(n))
            log_w[mine] = w - logsumexp(w) - np.log(groups)
        np.testing.assert_allclose(g["group_log_z"][...], group_log_z, rtol=0, atol=1e-9)
        np.testing.assert_allclose(g["log_weights"][...], log_w, rtol=0, atol=1e-9)
        z = np.array(group_log_z)
        assert abs(g.attrs["log_evidence"] - z.mean()) < 1e-9
        assert abs(g.attrs["log_evidence_err"] - z.std(ddof=1) / np.sqrt(groups)) < 1e-9
        # The exact log Z of configs/smc.toml is −ln 400.
        assert abs(g.attrs["log_evidence"] + np.log(400.0)) < 4 * g.attrs["log_evidence_err"]

        # The equally weighted draw through ArviZ: one chain of `total` draws
        # whose means agree with the weighted particles' within 5 standard
        # errors of the draw.
        draw = g["posterior"][...]
        assert draw.shape == (int(g.attrs["total"]), 2)
        idata = az.from_dict(posterior={"x": draw[None, :, 0], "y": draw[None, :, 1]})
        summary = az.summary(idata, kind="stats")
        x = g["particles"][...]
        weighted = np.exp(log_w) @ x
        for k, name in enumerate(["x", "y"]):
            se = draw[:, k].std() / np.sqrt(len(draw))
            assert abs(summary.loc[name, "mean"] - weighted[k]) < 5 * se + 1e-3
