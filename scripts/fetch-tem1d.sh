#!/usr/bin/env bash
# Build the TEM1D example plugin, examples/plugins/tem1d/libsampo_tem1d.so.
#
# TEM1D's Fortran source is not in this repository: it ships inside the
# pytem1d package on PyPI (MIT licence), and this script downloads that
# package (one pinned version, checked against its SHA-256), unpacks the
# Fortran into target/tem1d/fortran/ and builds the library from it and the
# C shim with examples/plugins/tem1d/Makefile. It also installs the same
# pytem1d into the project's venv (.venv, or $SAMPO_VENV), which the test
# tests/python/test_tem1d_plugin.py compares the plugin against.
#
# Needs gfortran and cJSON (Debian: gfortran, libcjson-dev) and python3-venv;
# installs them with apt-get when missing. Idempotent: a second run downloads
# nothing and rebuilds nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SAMPO_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
build="$repo/target/tem1d"

# The tested version, and the hash of its wheel (pure Python + the Fortran).
version="0.1.2"
wheel="pytem1d-$version-py3-none-any.whl"
sha256="4fccfeed6aaa0c27d8b06af99136b9d872ed0d02e542d3c16ace1e9be38cb20c"

# System packages: the compiler, the JSON parser the shim reads its config with.
pkgs=(gfortran libcjson-dev python3-venv)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "fetch-tem1d: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    echo "fetch-tem1d: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv gives pip; scripts/python-env.sh completes the same venv later.
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check --no-input)

mkdir -p "$build"
wheel_ok() { [ -f "$build/$wheel" ] && echo "$sha256  $build/$wheel" | sha256sum --check --status; }
if ! wheel_ok; then
    rm -f "$build/$wheel"
    "${pip[@]}" download "pytem1d==$version" --no-deps --only-binary :all: -d "$build"
    wheel_ok || { echo "fetch-tem1d: $wheel does not have the expected SHA-256 $sha256" >&2; exit 1; }
fi

# The Fortran units and include files, from the wheel's pytem1d/fortran/.
stamp="$build/fortran/.from-$wheel"
if [ ! -f "$stamp" ]; then
    rm -rf "$build/fortran" "$build/obj"
    "$venv/bin/python" - "$build/$wheel" "$build/fortran" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("pytem1d/fortran/") and not name.endswith("/"):
            (out / Path(name).name).write_bytes(z.read(name))
EOF
    touch "$stamp"
fi

# The reference the test compares against: the same pytem1d, in the venv.
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('pytem1d') != '$version')" 2>/dev/null; then
    "${pip[@]}" install "$build/$wheel"
fi

make -s -C "$repo/examples/plugins/tem1d" TEM1D_DIR="$build"
