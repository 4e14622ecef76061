"""Opening a sampo output file for reading, also while sampo still writes it.

sampo's writer holds HDF5's file lock on ``<output>.partial`` while it runs, so a
reader opens without locking. A read that falls between two of the writer's
flushes can fail; it succeeds when tried again, so reads of a ``.partial`` file
(the only name sampo writes to) are retried a few times. A completed file is
read once: its errors are real.
"""

import os
import time

import h5py
import numpy as np

RETRIES = 10
RETRY_PAUSE = 0.2  # seconds; the writer flushes at least every 2 s


def _open(path):
    try:
        return h5py.File(path, "r", locking=False)
    except (TypeError, ValueError):
        # h5py or HDF5 too old for the keyword: HDF5 reads this variable instead.
        os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
        return h5py.File(path, "r")
    except OSError as e:
        # The same file already open in this process with HDF5's default
        # locking (an h5py.File of the caller's): HDF5 wants the same flags.
        if "locking flag" not in str(e):
            raise
        return h5py.File(path, "r")


def read(path, fn, retries=RETRIES):
    """``fn(file)`` with the file open, retried if it is a ``.partial`` file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not str(path).endswith(".partial"):
        retries = 0
    for attempt in range(retries + 1):
        try:
            with _open(path) as f:
                return fn(f)
        except (OSError, KeyError):
            if attempt == retries:
                raise
            time.sleep(RETRY_PAUSE)


def text(value):
    """An HDF5 string (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def attr_value(value):
    """An attribute as plain Python: str for strings, lists of str, numbers as numbers."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [text(v) for v in value.tolist()]
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def attrs(obj):
    """Every attribute of a group or dataset as plain Python values."""
    return {k: attr_value(v) for k, v in obj.attrs.items()}


def dataset(ds):
    """A dataset's values; fixed-length strings as a list of str."""
    if ds.dtype.kind == "S" or h5py.check_string_dtype(ds.dtype) is not None:
        return [text(v).rstrip("\x00") for v in ds[...].tolist()]
    return ds[...]
