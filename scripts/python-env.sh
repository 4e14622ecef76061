#!/usr/bin/env bash
# Create (or bring up to date) the Python virtual environment used by the
# client tests (tests/python) and the peer benchmarks (scripts/bench-*.sh):
# numpy, h5py, emcee, ArviZ, jsonschema and pytest from PyPI, plus mpi4py and schwimmbad for the
# dispatch-overhead comparison in scripts/bench-scaling.sh, and this
# repository's own Python package (python/, `import sampo`) as an editable
# install, so edits to python/sampo/ need no reinstall.
#
#   scripts/python-env.sh            # venv at <repo>/.venv
#   SAMPO_VENV=/tmp/venv scripts/python-env.sh
#   PYTHON=python3.12 scripts/python-env.sh
#
# Idempotent and silent when the venv is already set up: the requirements are
# recorded in the venv once installed, and pip runs again only when they change
# or an import fails. Needs python3 with the venv module (Debian: python3-venv,
# installed by scripts/install-deps.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SAMPO_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"

# Minimum versions, not exact pins: new releases are what users will have.
# emcee 3.1 is the first with HDFBackend(read_only=True); h5py 3 reads
# variable-length strings as str. mpi4py must use the same MPI as sampo: its
# PyPI wheels load the system's libmpi at run time (Open MPI or MPICH), and
# where no wheel fits pip builds it from source with the mpicc on PATH
# (Debian: libopenmpi-dev). schwimmbad provides MPIPool.
requirements=(
    "numpy>=1.24"
    "h5py>=3.8"
    "emcee>=3.1"
    "pytest>=7.4"
    "mpi4py>=3.1"
    "schwimmbad>=0.3"
    # Reads sampo's R-hat/ESS/MCSE (src/diag/vehtari.rs matches ArviZ 0.23).
    "arviz>=0.17"
    # Validates specs against docs/sampo.schema.json (tests/python/test_schema.py);
    # Draft 2020-12 from 4.0; from 4.18 it resolves $ref with `referencing`.
    "jsonschema>=4.18"
)

# The package's own dependencies are in python/pyproject.toml: a change to it
# changes the stamp. Its path is not in the stamp; an install that no longer
# imports (the repository moved) fails venv_ok and is redone.
package="$repo/python"
stamp="$venv/.sampo-requirements"
wanted="$(printf '%s\n' "${requirements[@]}" "sampo (python/pyproject.toml $(cksum <"$package/pyproject.toml"))")"

venv_ok() {
    # From / so that a `sampo` folder in the working directory is not taken
    # for the installed package.
    [ -x "$venv/bin/python" ] &&
        (cd / && "$venv/bin/python" -c 'import numpy, h5py, emcee, pytest, mpi4py, schwimmbad, arviz, jsonschema, sampo') >/dev/null 2>&1
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && venv_ok; then
    exit 0
fi

command -v "$python" >/dev/null || {
    echo "python-env: $python not found; install Python 3 (Debian: scripts/install-deps.sh)" >&2
    exit 1
}

# A venv whose interpreter no longer runs (Python upgraded or moved) is rebuilt.
if [ -d "$venv" ] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    "$python" -m venv --clear "$venv"
elif [ ! -d "$venv" ]; then
    "$python" -m venv "$venv" || {
        echo "python-env: '$python -m venv' failed; on Debian install python3-venv" >&2
        exit 1
    }
fi

pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check --no-input)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install --upgrade "${requirements[@]}"
"${pip[@]}" install --editable "$package"
venv_ok || {
    echo "python-env: packages installed but imports fail in $venv" >&2
    exit 1
}
printf '%s\n' "$wanted" >"$stamp"
