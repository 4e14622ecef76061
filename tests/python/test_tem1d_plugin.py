"""The TEM1D plugin (examples/plugins/tem1d) against pytem1d, through the C ABI.

The library is loaded with ctypes and called as sampo calls it (sampo_init,
sampo_forward, sampo_free); its outputs must be pytem1d.run_tem1d's responses
on the same layered earths, to 1e-10 relative. Both run the TEM1D Fortran of
the same pytem1d release: the plugin's compiled by scripts/fetch-tem1d.sh,
pytem1d's as shipped in its wheel.

pytem1d runs in a fresh process for each instrument: its TEM1D keeps the Hankel
filters of the first call on the stack (FHTCONV's J0FILT/J1FILT are not SAVEd),
so a process that switches between a central loop (J1) and an offset loop (J0)
reads stale memory. The plugin is compiled with -fno-automatic, which keeps
them; test_contexts_interleave checks that.

Build first (scripts/test.sh does)::

    bash scripts/fetch-tem1d.sh

Without the library the module is skipped.
"""

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "examples" / "plugins" / "tem1d" / "libsampo_tem1d.so"

if not LIBRARY.exists():
    pytest.skip(
        f"{LIBRARY.relative_to(REPO)} is not built (run scripts/fetch-tem1d.sh)",
        allow_module_level=True,
    )

RTOL = 1e-10
SEED = 20251202
ERR_LEN = 1024
doubles = ctypes.POINTER(ctypes.c_double)


@pytest.fixture(scope="module")
def lib():
    lib = ctypes.CDLL(str(LIBRARY))
    lib.sampo_abi_version.restype = ctypes.c_int
    lib.sampo_thread_safety.restype = ctypes.c_int
    lib.sampo_init.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.sampo_init.restype = ctypes.c_int
    lib.sampo_forward.argtypes = [
        ctypes.c_void_p,
        doubles,
        ctypes.c_size_t,
        doubles,
        ctypes.c_size_t,
    ]
    lib.sampo_forward.restype = ctypes.c_int
    lib.sampo_free.argtypes = [ctypes.c_void_p]
    lib.sampo_free.restype = None
    lib.tem1d_gate_times.argtypes = [ctypes.c_void_p, doubles, ctypes.c_size_t]
    lib.tem1d_gate_times.restype = ctypes.c_size_t
    return lib


def init(lib, dim, config):
    """sampo_init: (status, context, n_outputs, message)."""
    text = config if isinstance(config, str) else json.dumps(config)
    ctx = ctypes.c_void_p()
    n = ctypes.c_size_t(0)
    err = ctypes.create_string_buffer(ERR_LEN)
    status = lib.sampo_init(b"tem1d", dim, text.encode(), ctypes.byref(ctx), ctypes.byref(n), err, ERR_LEN)
    return status, ctx, n.value, err.value.decode()


class Plugin:
    """One context of the library, for one state's config."""

    def __init__(self, lib, layers, config):
        self.lib = lib
        self.dim = 2 * layers - 1
        status, self.ctx, self.n, message = init(lib, self.dim, config)
        assert status == 0, message

    def forward(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.full(self.n, np.nan)
        status = self.lib.sampo_forward(
            self.ctx, x.ctypes.data_as(doubles), self.dim, y.ctypes.data_as(doubles), self.n
        )
        return status, y

    def times(self):
        t = np.zeros(self.n)
        assert self.lib.tem1d_gate_times(self.ctx, t.ctypes.data_as(doubles), self.n) == self.n
        return t

    def close(self):
        self.lib.sampo_free(self.ctx)


def three_layer_models(count, seed=SEED):
    """Resistivities log-normal around 100 ohm-m; thicknesses 30 ± 5 m and 70 ± 10 m."""
    rng = np.random.default_rng(seed)
    rho = np.exp(rng.normal(np.log(100.0), 1.0, size=(count, 3)))
    thk = np.column_stack([rng.normal(30.0, 5.0, count), rng.normal(70.0, 10.0, count)])
    assert np.all(thk > 0)
    return np.hstack([rho, thk])


PYTEM1D = """
import json, sys
import numpy as np
from pytem1d import run_tem1d
job = json.load(sys.stdin)
layers, kwargs, out = job["layers"], job["kwargs"], []
if "rx_position" in kwargs:
    kwargs["rx_position"] = tuple(kwargs["rx_position"])
for x in job["models"]:
    depths = np.concatenate([[0.0], np.cumsum(x[layers:])])
    r = run_tem1d(x[:layers], depths, **kwargs)
    out.append({"times": r.times.tolist(), "responses": r.responses.tolist()})
json.dump(out, sys.stdout)
"""


def pytem1d_responses(models, layers, config):
    """pytem1d.run_tem1d on the plugin's parameters (the depths of the layers'
    tops summed from the thicknesses), in a fresh process: (times, responses)
    for each model. JSON carries doubles exactly (shortest round-trip repr)."""
    job = {"models": np.asarray(models, dtype=float).tolist(), "layers": layers, "kwargs": config}
    done = subprocess.run(
        [sys.executable, "-c", PYTEM1D], input=json.dumps(job), capture_output=True, text=True, check=True
    )
    return [(np.array(r["times"]), np.array(r["responses"])) for r in json.loads(done.stdout)]


def relative_difference(y, ref):
    return np.max(np.abs(y - ref) / np.abs(ref))


def test_declares_abi_and_serialized(lib):
    assert lib.sampo_abi_version() == 1
    assert lib.sampo_thread_safety() == 0  # SAMPO_SERIALIZED: TEM1D keeps COMMON blocks
    assert not hasattr(lib, "sampo_log_density")  # a forward-only library


def test_200_three_layer_models_match_pytem1d(lib):
    models = three_layer_models(200)
    expected = pytem1d_responses(models, 3, {})
    plugin = Plugin(lib, 3, {})
    try:
        assert plugin.n == len(expected[0][0])
        np.testing.assert_array_equal(plugin.times(), expected[0][0])
        worst = 0.0
        for x, (_, ref) in zip(models, expected):
            status, y = plugin.forward(x)
            assert status == 0
            worst = max(worst, relative_difference(y, ref))
        print(f"max relative difference over 200 models: {worst:.3e}")
        assert worst <= RTOL
    finally:
        plugin.close()


# Instruments away from the defaults, each with the run_tem1d arguments it
# stands for: an offset loop, heights and filters; impulse response; a
# convolved response with a ramp and repetition; a polygonal loop (with
# repetition, or with IP: see tem1d.c); IP.
RAMP = {"times": [-1e-3, -2e-5, 0.0], "amplitudes": [0.0, 1.0, 0.0]}
SQUARE = [[-20.0, -20.0], [20.0, -20.0], [20.0, 20.0], [-20.0, 20.0]]
IP = {"chargeabilities": [0.1, 0.3, 0.05], "time_constants": [1e-3, 5e-3, 1e-4], "powers": [0.5, 0.4, 0.6]}
CONFIGS = {
    "offset-filtered": {
        "tx_area": 340.0,
        "tx_rx_separation": 13.25,
        "tx_height": 30.0,
        "rx_height": 32.0,
        "filter_frequencies": [3e5, 4.5e5],
    },
    "impulse": {"response_type": "impulse", "tx_area": 1600.0},
    "convolved-repetition": {
        "response_type": "convolved",
        "waveform": RAMP,
        "filter_frequencies": [3e5],
        "model_repetition": True,
        "repetition_frequency": 25.0,
    },
    "polygon-repetition": {
        "polygon_vertices": SQUARE,
        "rx_position": [5.0, 2.0],
        "response_type": "convolved",
        "waveform": RAMP,
        "model_repetition": True,
        "repetition_frequency": 25.0,
    },
    "polygon-ip": {"polygon_vertices": SQUARE, "rx_position": [5.0, 2.0], "ip_params": IP},
    "ip": {"ip_params": IP},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_configs_match_pytem1d(lib, name):
    models = three_layer_models(5, seed=SEED + 1)
    expected = pytem1d_responses(models, 3, CONFIGS[name])
    plugin = Plugin(lib, 3, CONFIGS[name])
    try:
        for x, (times, ref) in zip(models, expected):
            status, y = plugin.forward(x)
            assert status == 0
            assert plugin.n == len(times)
            np.testing.assert_array_equal(plugin.times(), times)
            assert relative_difference(y, ref) <= RTOL, name
    finally:
        plugin.close()


def test_contexts_interleave(lib):
    """A central and an offset loop, called in turn from one process: TEM1D's
    COMMON blocks are set again from the context at every call, and its Hankel
    filters for J0 and J1 are kept (-fno-automatic)."""
    models = three_layer_models(3, seed=SEED + 2)
    central_ref = pytem1d_responses(models, 3, {})
    offset_ref = pytem1d_responses(models, 3, CONFIGS["offset-filtered"])
    central = Plugin(lib, 3, {})
    offset = Plugin(lib, 3, CONFIGS["offset-filtered"])
    try:
        for x, (_, c_ref), (_, o_ref) in zip(models, central_ref, offset_ref):
            _, y_offset = offset.forward(x)
            _, y_central = central.forward(x)
            assert relative_difference(y_central, c_ref) <= RTOL
            assert relative_difference(y_offset, o_ref) <= RTOL
    finally:
        central.close()
        offset.close()


def test_other_layer_counts(lib):
    for layers, x in [(1, [30.0]), (5, [300.0, 20.0, 150.0, 5.0, 1000.0, 10.0, 25.0, 40.0, 80.0])]:
        [(_, ref)] = pytem1d_responses([x], layers, {})
        plugin = Plugin(lib, layers, {"layers": layers})
        try:
            status, y = plugin.forward(x)
            assert status == 0
            assert relative_difference(y, ref) <= RTOL
        finally:
            plugin.close()


@pytest.mark.parametrize(
    "dim, config, words",
    [
        (5, '{"tx_area": -314.16}', "tx_area"),
        (5, '{"tx_aera": 314.16}', "unknown key"),
        (5, '{"response_type": "ramp"}', "response_type"),
        (5, '{"response_type": "convolved"}', "waveform"),
        (5, '{"tx_polarity": 2}', "tx_polarity"),
        (5, '{"filter_frequencies": [1e5, -1]}', "filter_frequencies"),
        (5, '{"layers": 4}', "layers"),
        (5, '{"polygon_vertices": [[0, 0], [1, 0]]}', "polygon_vertices"),
        (5, '{"polygon_vertices": [[-10, -10], [10, -10], [0, 10]]}', "model_repetition"),
        (5, '{"polygon_vertices": [[0, 0], [10, 0], [0, 10]], "rx_position": [5, 0], "ip_params": '
            '{"chargeabilities": [0, 0, 0], "time_constants": [1, 1, 1], "powers": [0.5, 0.5, 0.5]}}',
         "rx_position"),
        (5, '{"ip_params": {"chargeabilities": [0.1], "time_constants": [1], "powers": [0.5]}}', "ip_params"),
        (5, "[1, 2]", "config"),
        (5, "{not json", "config"),
        (4, "{}", "2N-1"),
    ],
)
def test_bad_config_fails_with_message(lib, dim, config, words):
    status, _, _, message = init(lib, dim, config)
    assert status != 0
    assert words in message, message


def test_point_outside_the_earth_fails(lib):
    plugin = Plugin(lib, 3, {})
    try:
        for x in ([100.0, 10.0, 50.0, -30.0, 70.0], [0.0, 10.0, 50.0, 30.0, 70.0], [100.0, np.nan, 50.0, 30.0, 70.0]):
            status, _ = plugin.forward(x)
            assert status != 0
    finally:
        plugin.close()


SAMPO_BIN = Path(__import__("os").environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))


@pytest.mark.skipif(not SAMPO_BIN.exists(), reason="sampo is not built (cargo build --release)")
def test_sampo_batch_run_of_configs_batch_tem1d_matches_pytem1d(tmp_path):
    """The study in configs/batch-tem1d.toml, 200 items, run by sampo over
    MPI ranks: what h5py reads from the file (the models drawn, their
    responses and the statistics) is pytem1d's answer on the same models."""
    out = tmp_path / "tem.h5"
    import h5py

    args = [
        "mpiexec", "--oversubscribe", "--bind-to", "none", "-n", "2",
        str(SAMPO_BIN), "run", str(REPO / "configs" / "batch-tem1d.toml"),
        "--set", "sampler.items=200", "-o", str(out), "-q",
    ]
    env = dict(__import__("os").environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run(args, check=True, cwd=tmp_path, env=env)
    with h5py.File(out, "r") as f:
        g = f["batch/three-layer"]
        x, y, status = g["inputs"][:], g["outputs"][:], g["status"][:]
        statistics = g["statistics"][:]
        names = [s.decode() if isinstance(s, bytes) else s for s in g.attrs["statistics"]]
        assert g.attrs["validate_max_rel"] == 0.0
    assert x.shape == (200, 5) and y.shape == (200, 71) and (status == 0).all()
    expected = pytem1d_responses(x, 3, {})
    worst = max(relative_difference(yi, ref) for yi, (_, ref) in zip(y, expected))
    print(f"sampo batch vs pytem1d, 200 models: max relative difference {worst:.3e}")
    assert worst <= RTOL
    # The stored statistics are numpy's on the stored outputs.
    row = dict(zip(names, statistics))
    np.testing.assert_allclose(row["mean"], y.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(row["sd"], y.std(axis=0, ddof=1), rtol=1e-10)
    for q in ("0.1", "0.5", "0.9"):
        np.testing.assert_allclose(row[f"q{q}"], np.quantile(y, float(q), axis=0), rtol=1e-12)
