"""pytem1d over a multiprocessing pool, as the TEM1D utilities run it: the
models in chunks of 500 handed to WORKERS processes, each calling
pytem1d.run_tem1d model by model; the responses gathered in order. The
models are the ones sampo drew (read from its output), so both compute the
same thing; the answers are compared. Run by scripts/bench-batch.sh.

    python bench_batch_pool.py SAMPO_OUTPUT WORKERS
"""

import sys
import time
from multiprocessing import Pool

import h5py
import numpy as np

CHUNK = 500


def responses(chunk):
    from pytem1d import run_tem1d

    out = []
    for x in chunk:
        depths = np.concatenate([[0.0], np.cumsum(x[3:])])
        out.append(run_tem1d(x[:3], depths).responses)
    return np.array(out)


def main():
    path, workers = sys.argv[1], int(sys.argv[2])
    with h5py.File(path, "r") as f:
        g = f["batch/three-layer"]
        models, stored = g["inputs"][:], g["outputs"][:]
    chunks = [models[i : i + CHUNK] for i in range(0, len(models), CHUNK)]
    start = time.perf_counter()
    if workers == 1:
        parts = [responses(c) for c in chunks]
    else:
        with Pool(workers) as pool:
            parts = pool.map(responses, chunks)
    seconds = time.perf_counter() - start
    y = np.vstack(parts)
    worst = np.max(np.abs(y - stored) / np.abs(stored))
    print(f"{seconds:.3f} {worst:.3e}")


if __name__ == "__main__":
    main()
