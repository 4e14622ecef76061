"""dynesty (its defaults) on the benchmark problem of scripts/bench-smc.sh:
a Gaussian likelihood N(mean·1, sd² I) in dim dimensions inside the uniform
box [low, high]^dim. Prints one JSON line: log Z, its error, likelihood
calls and wall seconds."""

import json
import sys
import time

import numpy as np
import dynesty

dim, mean, sd, low, high, seed = (
    int(sys.argv[1]),
    float(sys.argv[2]),
    float(sys.argv[3]),
    float(sys.argv[4]),
    float(sys.argv[5]),
    int(sys.argv[6]),
)
norm = -0.5 * dim * np.log(2 * np.pi * sd * sd)


def loglike(x):
    return norm - 0.5 * np.sum(((x - mean) / sd) ** 2)


def prior_transform(u):
    return low + (high - low) * u


start = time.perf_counter()
sampler = dynesty.NestedSampler(
    loglike, prior_transform, dim, rstate=np.random.default_rng(seed)
)
sampler.run_nested(print_progress=False)
wall = time.perf_counter() - start
res = sampler.results
print(
    json.dumps(
        {
            "log_z": float(res.logz[-1]),
            "log_z_err": float(res.logzerr[-1]),
            "evaluations": int(np.sum(res.ncall)),
            "wall": wall,
        }
    )
)
