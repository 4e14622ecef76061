"""Running sampo with Python models and processes in these tests: the
environment its embedded interpreter imports from (this test's Python), a
run in a folder, and the comparison of two outputs bit for bit."""

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAMPO_BIN = Path(os.environ.get("SAMPO_BIN", REPO / "target" / "release" / "sampo"))

# The environment sampo's interpreter adds: the one running these tests.
ENV = dict(os.environ, VIRTUAL_ENV=sys.prefix)
ENV.pop("CONDA_PREFIX", None)
if os.geteuid() == 0:  # containers and CI run as root
    ENV.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(tmp_path, name, text, *args, mpi=0, check=True, env=None, command="run"):
    """Writes `text` to <name>.toml in `tmp_path` and runs `sampo <command>`
    on it (`run` into <name>.h5, quietly), under `mpiexec -n mpi` if asked,
    with `env` (default ENV, as it is at the call)."""
    (tmp_path / f"{name}.toml").write_text(text)
    cmd = [str(SAMPO_BIN), command, f"{name}.toml"]
    if command == "run":
        cmd += ["-q", "-o", f"{name}.h5", *args]
    if mpi:
        cmd = ["mpiexec", "--oversubscribe", "--bind-to", "none", "-n", str(mpi)] + cmd
    # A hang fails the test instead of holding the suite.
    done = subprocess.run(cmd, cwd=tmp_path, env=ENV if env is None else env,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def datasets(path):
    """Every dataset of an output, as arrays (the bits of the results)."""
    found = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            # Timings are wall-clock; a checkpoint holds the resolved spec.
            skip = name.startswith("timings") or name.startswith("checkpoint")
            if isinstance(obj, h5py.Dataset) and not skip:
                found[name] = obj[...]
        f.visititems(visit)
    return found


def assert_same_bits(a, b):
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    for name in da:
        x, y = da[name], db[name]
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.uint64), y.view(np.uint64)), name
        else:
            assert np.array_equal(x, y), name
