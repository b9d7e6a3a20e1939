#!/usr/bin/env bash
# Runs the headless OBS host with the plugin under valgrind's memcheck: a portrait, 60 frames
# and at least 5 masks, four settings changes (mode, model, threshold, aspect), then OBS shuts
# down while the worker runs. Then scripts/valgrind_report.py judges the errors: the plugin must have none
# (invalid reads/writes, uninitialised values, overlapping copies, definitely lost memory);
# those of libobs, Mesa, ONNX Runtime and the loader are counted, not judged.
#
# Usage: scripts/valgrind.sh [OUT_DIR]   (default target/valgrind; about 5 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/valgrind}
rm -rf "$out" && mkdir -p "$out"
command -v valgrind >/dev/null || { echo "valgrind: not installed (scripts/setup.sh installs it)" >&2; exit 1; }
host=target/release/backdrop-render
[ -x "$host" ] || { echo "valgrind: $host is missing (cargo build --release)" >&2; exit 1; }
plugin=target/valgrind-plugin
bash scripts/install-plugin.sh "$plugin" >/dev/null
testdata=${BACKDROP_TESTDATA:-../shared/testdata}
portraits=("$testdata"/portraits/images/*.jpg)
portrait=${portraits[0]}
[ -f "$portrait" ] || { echo "valgrind: no portrait in $testdata/portraits/images" >&2; exit 1; }
# --keep-debuginfo: the drivers libobs unloads at shutdown keep their names in leak stacks.
xvfb-run -a valgrind --tool=memcheck --xml=yes --xml-file="$out/memcheck.xml" \
    --keep-debuginfo=yes --num-callers=40 --leak-check=full \
    "$host" --plugin "$plugin/obs-backdrop" --input "$portrait" --canvas 256x256 \
    --frames 60 --min-masks 5 --settings-storm 4 \
    --timeout-s 900 --out "$out/run" >"$out/stdout.txt" 2>"$out/stderr.txt" || {
    tail -n 20 "$out/stderr.txt" >&2
    echo "valgrind: the host failed under valgrind" >&2
    exit 1
}
python3 -c "import json,sys; r=json.load(open('$out/run/report.json')); print('[valgrind] run: %d frames, %s masks, %s' % (r['frames_captured'], r['stats'].get('mask_frames'), r['stats'].get('state')))"
python3 scripts/valgrind_report.py "$out/memcheck.xml"
