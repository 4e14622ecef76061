# Sourced by the scripts: the environment sampo's build and tests need.
# cargo from rustup, when it is installed but not on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "sampo needs Rust >= 1.87 (cargo); install it with rustup: https://rustup.rs" >&2
    exit 1
fi
# OpenMPI refuses to start as root unless told that this is intended
# (containers and CI run as root).
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Python models embed the interpreter that pyo3 finds at build time: Debian's
# /usr/bin/python3 (its headers and shared library come with python3-dev) unless
# PYO3_PYTHON names another. A run then adds the active environment
# (VIRTUAL_ENV or CONDA_PREFIX) of the same Python version.
if [ -z "${PYO3_PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
    export PYO3_PYTHON=/usr/bin/python3
fi
