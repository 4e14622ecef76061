#!/usr/bin/env bash
# Install the system libraries sampo builds against, from Debian's packages:
# OpenMPI (rsmpi links it), HDF5 1.10 (hdf5-metno links it), libclang (rsmpi's
# bindgen needs it), pkg-config, gfortran (the Fortran plugin example), python3-dev
# (Python models embed the interpreter), man-db and groff-base (tests/front_door.rs
# renders `sampo man` with `man -l`). Idempotent:
# does nothing when all are present.
# On a cluster, load modules instead (see docs/install.md, "On a cluster").
set -euo pipefail

pkgs=(build-essential pkg-config libclang-dev clang libopenmpi-dev openmpi-bin libhdf5-dev python3-venv python3-dev gfortran man-db groff-base)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
