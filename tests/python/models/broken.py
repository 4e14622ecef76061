"""Models that fail in each way a user's model can, for the error tests.
`config.mode` picks the failure."""

import time

import numpy as np


def setup(config):
    if config.get("mode") == "setup-raises":
        raise ValueError("cannot read obs.csv")
    return config


def log_likelihood(theta, config):
    mode = config.get("mode")
    if mode == "raises" and theta[0] > 0.5:
        raise ZeroDivisionError("bad parameter")
    if mode == "hangs" and theta[0] > 0.5:
        time.sleep(10**6)  # a call that never returns
    if mode == "string":
        return "high"
    if mode == "nan":
        return float("nan") if theta[0] > 0.0 else -0.5 * float(theta @ theta)
    return -0.5 * float(theta @ theta)


def vectorised(thetas, config):
    if config.get("mode") == "short":
        return np.zeros(thetas.shape[0] - 1)
    return -0.5 * np.sum(thetas * thetas, axis=1)
