"""A diagonal Gaussian log-density computed with exactly the floating-point
operations of sampo's built-in `gaussian` model (Cholesky factor, its
inverse, the same sums in the same order), so that a run with it must give
the built-in model's samples bit for bit."""

import math

import numpy as np

LN_2PI = 1.8378770664093455


def setup(config):
    mean = [float(m) for m in config["mean"]]
    var = [float(v) for v in config["var"]]
    chol = [math.sqrt(v) for v in var]
    log_det = 0.0
    for c in chol:
        log_det += math.log(c)
    return {
        "mean": mean,
        "w": [1.0 / c for c in chol],
        "log_norm": -0.5 * (len(mean) * LN_2PI + 2.0 * log_det),
    }


def log_likelihood(theta, g):
    quad = 0.0
    for x, m, w in zip(theta, g["mean"], g["w"]):
        z = w * (float(x) - m)
        quad += z * z
    return g["log_norm"] - 0.5 * quad


def log_likelihood_many(thetas, g):
    quad = np.zeros(thetas.shape[0])
    for i, (m, w) in enumerate(zip(g["mean"], g["w"])):
        z = w * (thetas[:, i] - m)
        quad = quad + z * z
    return g["log_norm"] - 0.5 * quad
