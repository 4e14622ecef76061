"""Run specs that several Python test modules share."""

# Two states of different dimension with known means: a correlated 2-D
# Gaussian and Neal's 3-D funnel.
TWO_STATES = """
[[states]]
name = "g"
params = ["x", "y"]
model = { kind = "gaussian", mean = [1.0, -1.0], cov = [[1.0, 0.6], [0.6, 2.0]] }
prior = { kind = "uniform", low = [-20.0, -20.0], high = [20.0, 20.0] }

[[states]]
name = "funnel"
params = ["v", "x1", "x2"]
model = { kind = "funnel", dim = 3, sigma = 1.5 }
prior = { kind = "normal", mean = [0.0, 0.0, 0.0], sd = [10.0, 10.0, 10.0] }
init = { kind = "ball", center = [0.0, 0.0, 0.0], radius = 0.5 }
"""

# About 13 s of work on one thread (16 walkers × 2000 steps × 400 µs); the
# tests that read it stop it early.
SLOW = """
[run]
seed = 5
[parallel]
threads = 1
[sampler]
walkers = 16
steps = 2000
[[states]]
name = "g"
model = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.5], [0.5, 2.0]] }
prior = { kind = "uniform", low = [-10.0, -10.0], high = [10.0, 10.0] }
cost_us = 400
"""
