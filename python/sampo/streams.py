"""The random streams of sampo's paths, recomputed in Python.

A Python process (``process = { kind = "python", ... }``) draws from a
``numpy.random.Generator`` that sampo seeds from the path's own stream; the
functions here give the same generator for any path, so a path can be
recomputed alone, outside sampo::

    import sampo
    rng = sampo.path_generator(seed=7, state=0, path=12345)
    values = simulate(rng, steps, setup(config))   # the path in the file
"""

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
# The registry's id of kind = "paths", which keys its streams.
_PATHS_KIND = 5


def _mix(z):
    """SplitMix64's output for state z (the state advanced once)."""
    z = (z + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & _MASK


def stream_words(seed, kind, stage, task, index, count):
    """The first `count` 64-bit outputs of sampo's stream keyed (seed, kind,
    stage, task, index): Xoshiro256++ seeded through SplitMix64."""
    key = _mix(_mix(_mix(_mix(_mix(seed) ^ kind) ^ stage) ^ task) ^ index)
    s = [_mix((key + i * _GOLDEN) & _MASK) for i in range(4)]
    out = []
    for _ in range(count):
        out.append((_rotl((s[0] + s[3]) & _MASK, 23) + s[0]) & _MASK)
        t = (s[1] << 17) & _MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
    return out


def path_generator(seed, state, path):
    """The ``numpy.random.Generator`` sampo hands a Python process for path
    `path` of the state at index `state` (0 for the first ``[[states]]``) of
    a run with ``[run] seed = seed``: numpy's PCG64 with state w0·2⁶⁴ + w1
    and increment w2·2⁶⁴ + w3 (lowest bit set), w0…w3 the path's first four
    words."""
    w0, w1, w2, w3 = stream_words(seed, _PATHS_KIND, 0, state, path, 4)
    bits = np.random.PCG64(0)
    bits.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w0 << 64) | w1, "inc": (w2 << 64) | w3 | 1},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return np.random.Generator(bits)
