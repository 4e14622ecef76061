"""The built-in `decay` forward model in Python, with the same arithmetic
(amplitude * exp(-t / tau) through the C library's exp), so that a batch run
with it must give the built-in outputs bit for bit."""

import math


def setup(config):
    return [float(t) for t in config["times"]]


def forward(theta, times):
    amplitude, tau = float(theta[0]), float(theta[1])
    return [amplitude * math.exp(-t / tau) for t in times]


def output_names(times):
    return [f"t{t:g}" for t in times]


def failing(theta, times):
    if theta[0] > 1.5:
        raise RuntimeError("solver diverged")
    return forward(theta, times)
