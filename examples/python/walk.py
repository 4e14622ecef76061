"""A ±1 random walk as a process of your own for kind = "paths"
(docs/python-models.md): every random number comes from `rng`, which sampo
seeds from the path's own stream, so each path is reproducible alone."""

import numpy as np


def setup(config):
    """Once per state and rank: the probability of a step up."""
    return float(config["p"])


def simulate(rng, steps, p):
    """One path: its position at steps 0, 1, …, steps (steps + 1 integers)."""
    up = rng.random(steps) < p
    return np.concatenate(([0], np.cumsum(np.where(up, 1, -1))))
