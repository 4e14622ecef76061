"""Time per forward call of TEM1D: the plugin (examples/plugins/tem1d) through
a C driver and through ctypes, against pytem1d.run_tem1d, on the same 200
three-layer earths as tests/python/test_tem1d_plugin.py (defaults: central
loop, step response, 71 gates). Run by scripts/bench-tem1d.sh.

    python bench_tem1d.py MODELS_FILE DRIVER LIBRARY PASSES
"""

import ctypes
import subprocess
import sys
import time

import numpy as np
from pytem1d import run_tem1d

models_file, driver, library, passes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(20251202)
count = 200
rho = np.exp(rng.normal(np.log(100.0), 1.0, size=(count, 3)))
thk = np.column_stack([rng.normal(30.0, 5.0, count), rng.normal(70.0, 10.0, count)])
models = np.hstack([rho, thk])
np.savetxt(models_file, models, fmt="%.17g")
calls = count * passes


def report(name, seconds):
    print(f"{name:<28} {calls:6d} calls  {seconds / calls * 1e6:9.1f} us/call")


# The C driver: dlopen, sampo_init, sampo_forward in a loop, clock_gettime.
out = subprocess.run([driver, library, models_file, str(passes)], check=True, capture_output=True, text=True)
report("plugin, C driver", float(out.stdout))

# The same library through ctypes (adds Python's call overhead).
lib = ctypes.CDLL(library)
doubles = ctypes.POINTER(ctypes.c_double)
lib.sampo_init.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                           ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t]
lib.sampo_forward.argtypes = [ctypes.c_void_p, doubles, ctypes.c_size_t, doubles, ctypes.c_size_t]
ctx, n, err = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.create_string_buffer(512)
assert lib.sampo_init(b"bench", 5, b"{}", ctypes.byref(ctx), ctypes.byref(n), err, 512) == 0, err.value
y = np.zeros(n.value)
rows = [np.ascontiguousarray(m) for m in models]
ptrs = [r.ctypes.data_as(doubles) for r in rows]
yp = y.ctypes.data_as(doubles)
t0 = time.perf_counter()
for _ in range(passes):
    for p in ptrs:
        lib.sampo_forward(ctx, p, 5, yp, n.value)
report("plugin, ctypes loop", time.perf_counter() - t0)

# pytem1d, as a Python user calls it.
depths = [np.concatenate([[0.0], np.cumsum(m[3:])]) for m in models]
t0 = time.perf_counter()
for _ in range(passes):
    for m, d in zip(models, depths):
        run_tem1d(m[:3], d)
report("pytem1d.run_tem1d", time.perf_counter() - t0)
