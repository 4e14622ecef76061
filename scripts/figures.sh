#!/usr/bin/env bash
# Regenerates the pictures of docs/figures/ (shown in the README and in
# docs/plot.md, "Gallery"): runs example specs of configs/ into a temporary
# directory and draws one figure of each with `sampo plot`, 8 × 5 inches at
# 100 dpi (800 × 500 pixels).
#
#   scripts/figures.sh                  # with target/release/sampo
#   SAMPO=/path/to/sampo PYTHON=.venv/bin/python scripts/figures.sh
#
# With Pillow importable by $PYTHON (default python3), each picture is then
# stored with a palette of 128 colours, which keeps it near a tenth of its
# size (plots have few colours); without, it stays as sampo wrote it.
#
# Every run has a fixed seed, so the pictures change only when sampo does.
set -euo pipefail
cd "$(dirname "$0")/.."
sampo=${SAMPO:-target/release/sampo}
python=${PYTHON:-python3}
if "$python" -c 'import PIL' 2>/dev/null; then
    palette=1
else
    palette=0
    echo "figures.sh: no Pillow for $python: the PNGs keep their full colours" >&2
fi
out=docs/figures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

run() { # run CONFIG [--set ...]: configs/CONFIG.toml into $tmp/CONFIG.h5
    local config=$1
    shift
    "$sampo" run "configs/$config.toml" -q -o "$tmp/$config.h5" "$@"
}
plot() { # plot CONFIG PICTURE [options]: one figure of $tmp/CONFIG.h5
    local config=$1 picture=$2
    shift 2
    "$sampo" plot "$tmp/$config.h5" --size 8x5 --dpi 100 -o "$out/$picture.png" "$@" >/dev/null
    if [ "$palette" = 1 ]; then
        "$python" - "$out/$picture.png" <<'PY'
import sys
from PIL import Image
path = sys.argv[1]
image = Image.open(path).convert("RGB")
image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
    path, optimize=True)
PY
    fi
    echo "$out/$picture.png: $(wc -c <"$out/$picture.png") bytes"
}

run quickstart
plot quickstart ensemble-corner --state rosenbrock --kind corner --params a,b,c
run chains
plot chains chains-trace --state funnel --kind trace
run smc
plot smc smc --kind smc
run transc
plot transc transc --kind transc
run batch
plot batch batch --kind batch --params t0.5,t4
# Every step recorded (the hitting steps' histogram has a bin a step), and
# the paths themselves for the sample paths over the fan.
run paths --set sampler.paths=5000 --set 'sampler.record="both"' \
    --set 'sampler.statistics={ every = 1, quantiles = [0.05, 0.5, 0.95] }'
plot paths paths --state ruin --kind paths
