"""A straight line with unknown noise, fitted to a CSV file: a Python model
for sampo (configs/python.toml).

sampo imports this file once per rank, calls `setup(config)` once per state
with the spec's `config` table, and then calls the function the spec names
with the points to evaluate and what `setup` returned.
"""

import os

import numpy as np


def setup(config):
    # Paths in `config` are this model's business: here, relative to this file.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), config["data"])
    with open(path) as f:
        rows = [line for line in f if line.strip() and not line.startswith("#")]
    header, body = rows[0].strip().split(","), rows[1:]
    table = np.loadtxt(body, delimiter=",")
    return table[:, header.index("x")], table[:, header.index("y")]


def log_likelihood(thetas, data):
    """Vectorised (`vectorized = true`): `thetas` is an (n, 3) array of
    (intercept, slope, log_sigma); returns the n log-likelihoods."""
    x, y = data
    a, b, log_sigma = thetas[:, 0:1], thetas[:, 1:2], thetas[:, 2:3]
    resid = (y[None, :] - a - b * x[None, :]) * np.exp(-log_sigma)
    n = len(x)
    return -0.5 * np.sum(resid**2, axis=1) - n * (log_sigma[:, 0] + 0.5 * np.log(2 * np.pi))


def log_likelihood_one(theta, data):
    """The same for one point (a 1-D array of 3), as a scalar model."""
    return log_likelihood(theta[None, :], data)[0]
