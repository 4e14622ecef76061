"""stochlab's side of scripts/bench-paths.sh: the same 3-state Markov chain.

    bench_paths_stochlab.py SAMPO_FILE PATHS STEPS JOBS SEED

Builds a stochlab 0.1.1 MarkovChain from the chain sampo ran (the transition
matrix, labels and start are read back from SAMPO_FILE's resolved_spec, so both
simulate the same chain), times MonteCarloEngine.simulate(n_paths, T, x0=...)
— sequential when JOBS is 1, else parallel=True, n_jobs=JOBS (stochlab's
ProcessPoolExecutor with a seed per path from SeedSequence.spawn) — and
compares stochlab's distribution at the last step with sampo's (occupation)
and with the exact x0·Pᵀ. Prints one line:

    seconds  max|stochlab − sampo|/se  max|stochlab − exact|/se  max|sampo − exact|/se

where se is the standard error of a share (√(p(1 − p)/paths), combined for the
difference of the two estimates). Only simulate() is timed, not the start-up.
"""

import json
import sys
import time

import h5py
import numpy as np
from stochlab.mc import MonteCarloEngine
from stochlab.models import MarkovChain


def main():
    sampo_file, paths, steps, jobs, seed = sys.argv[1:]
    paths, steps, jobs, seed = int(paths), int(steps), int(jobs), int(seed)
    with h5py.File(sampo_file, "r") as f:
        spec = json.loads(f.attrs["resolved_spec"])
        (state,) = spec["sampler"]["paths"]["states"]
        name = spec["states"][0]["name"]
        occ = f[f"paths/{name}/occupation"][-1]
        assert f[f"paths/{name}"].attrs["steps"] == steps
        assert f[f"paths/{name}"].attrs["paths"] == paths
    proc = state["process"]
    assert proc["kind"] == "markov-chain"
    labels = list(proc["labels"])
    P = np.array(proc["transition"], dtype=float)
    start = proc["x0"]["state"]
    chain = MarkovChain.from_transition_matrix(labels, P)
    assert np.array_equal(chain.P, P)

    engine = MonteCarloEngine(chain)
    kw = dict(parallel=True, n_jobs=jobs) if jobs > 1 else {}
    t0 = time.perf_counter()
    result = engine.simulate(n_paths=paths, T=steps, x0=labels[start], seed=seed, **kw)
    seconds = time.perf_counter() - t0

    assert len(result.paths) == paths
    assert all(len(p.states) == steps + 1 and p.states[0] == labels[start] for p in result.paths)
    last = np.array([p.states[-1] for p in result.paths], dtype=object)
    share = np.array([np.mean(last == lab) for lab in labels])
    x0 = np.zeros(len(labels))
    x0[start] = 1.0
    exact = x0 @ np.linalg.matrix_power(P, steps)
    var = exact * (1 - exact) / paths
    z_pair = np.max(np.abs(share - occ) / np.sqrt(2 * var))
    z_stochlab = np.max(np.abs(share - exact) / np.sqrt(var))
    z_sampo = np.max(np.abs(occ - exact) / np.sqrt(var))
    print(f"{seconds:.3f} {z_pair:.2f} {z_stochlab:.2f} {z_sampo:.2f}")


if __name__ == "__main__":
    main()
