"""The paths kind's output read with h5py and recomputed with numpy.

``/paths/<state>`` (docs/paths.md, "Output"): with ``record = "both"``
every path at every recorded step (``states``) beside the statistics sampo
computed from its per-chunk partial sums. What numpy computes from the
stored paths must be what sampo reports.
"""

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))


def test_the_stored_paths_give_the_reported_statistics(tmp_path):
    out = tmp_path / "paths.h5"
    spec = (REPO / "configs" / "paths.toml").read_text()
    spec = spec.replace("paths = 100_000", "paths = 5000").replace(
        'record = "statistics"', 'record = "both"'
    )
    (tmp_path / "p.toml").write_text(spec)
    args = [str(SAMPO_BIN), "run", "p.toml", "-q", "-o", str(out), "--threads", "2"]
    subprocess.run(args, check=True, cwd=tmp_path)
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        for name in ["weather", "ruin", "walk", "stock", "rate"]:
            g = f["paths/" + name]
            x = g["states"][...]
            assert x.shape == (5000, 11)
            stats = g["statistics"][...]
            mean, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
            np.testing.assert_allclose(stats[:, 0], mean, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(stats[:, 1], sd, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(stats[:, 2], sd / np.sqrt(5000), rtol=1e-10, atol=1e-12)
            if "occupation" not in g:
                assert x.dtype == np.float64
                # Quantiles from sampo's histograms: within a bin of numpy's.
                q = np.quantile(x, [0.05, 0.5, 0.95], axis=0, method="inverted_cdf").T
                width = g["quantile_bins"][:, 1]
                gap = np.abs(g["quantiles"][...] - q)
                assert np.all(gap <= width[:, None] * (1 + 1e-9) + 1e-12), (name, gap.max())
                continue
            assert x.dtype == np.int64
            labels = [s.decode() if isinstance(s, bytes) else s for s in g.attrs["labels"]]
            values = np.arange(len(labels)) if name != "walk" else np.arange(-5, 6)
            share = (x[:, :, None] == values[None, None, :]).mean(axis=0)
            np.testing.assert_array_equal(g["occupation"][...], share)
            np.testing.assert_allclose(
                g["occupation_se"][...], np.sqrt(share * (1 - share) / 5000), rtol=1e-12
            )
            q = np.quantile(x, [0.05, 0.5, 0.95], axis=0, method="inverted_cdf").T
            np.testing.assert_array_equal(g["quantiles"][...], q)
        # Hitting times of {0, 5} from the ruin paths: absorbing, so a path
        # hit by the last recorded step is in 0 or 5 there.
        h = f["paths/ruin/hitting"][...][0]
        last = f["paths/ruin/states"][:, -1]
        assert h[0] == np.isin(last, [0, 5]).sum()
        absorbed = f["paths/ruin/absorption"][...]
        np.testing.assert_array_equal(absorbed[:, 0], [(last == 0).mean(), (last == 5).mean()])
