"""Processes for kind = "paths" in Python, for tests/python/test_python_processes.py:
a ±1 random walk (integers), a Gaussian walk (floats), and each way a user's
process can fail, picked by `config.mode`."""

import numpy as np


def setup(config):
    if config.get("mode") == "setup-raises":
        raise ValueError("cannot read rates.csv")
    return config


def walk(rng, steps, config):
    """A ±1 walk from 0, up with probability p."""
    up = rng.random(steps) < config["p"]
    return np.concatenate(([0], np.cumsum(np.where(up, 1, -1))))


def gaussian(rng, steps, config):
    """x0 + drift·t + sigma·(sum of t standard normals)."""
    z = rng.standard_normal(steps)
    steps_ = config["drift"] + config["sigma"] * z
    return np.concatenate(([config["x0"]], config["x0"] + np.cumsum(steps_)))


def broken(rng, steps, config):
    mode = config["mode"]
    x = rng.random(steps + 1)
    if mode == "raises" and x[0] < 0.5:
        raise ZeroDivisionError("a rate of zero")
    if mode == "short":
        return x[:-1]
    if mode == "string":
        return "a path"
    if mode == "matrix":
        return x.reshape(1, -1)
    if mode == "nan":
        x[3] = np.nan
    return x
