"""A model whose import fails: it needs a package that is not installed."""

import sampo_no_such_package  # noqa: F401


def log_likelihood(theta):
    return 0.0
