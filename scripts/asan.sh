#!/usr/bin/env bash
# Builds the plugin and the headless host with AddressSanitizer (target/asan; the stable
# toolchain takes -Zsanitizer with RUSTC_BOOTSTRAP=1) and runs a fast subset of the end-to-end
# runs in real libobs with LeakSanitizer on: a portrait with a settings storm; the talking head
# with the filter removed while it runs; 20 filters added and removed on a live source and 5
# sources made with a filter and released. scripts/asan_report.py then fails on any
# AddressSanitizer error and on leaks whose innermost frame is the plugin's.
#
# Usage: scripts/asan.sh [OUT_DIR]   (default target/asan-runs; about 4 minutes with the build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/asan-runs}
rm -rf "$out" && mkdir -p "$out"
out=$(cd "$out" && pwd)
testdata=${BACKDROP_TESTDATA:-../shared/testdata}
portraits=("$testdata"/portraits/images/*.jpg)
video=$testdata/video/talking_head_a.mp4
[ -f "${portraits[0]}" ] && [ -f "$video" ] || { echo "asan: test data missing in $testdata" >&2; exit 1; }
triple=x86_64-unknown-linux-gnu
echo "[asan] building with AddressSanitizer (target/asan)"
# --export-dynamic: the host's sanitizer runtime serves the plugin that libobs dlopens;
# backdrop_sanitizer leaves out the host's own malloc interposers (its allocation counter).
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes -Clink-arg=-Wl,--export-dynamic --cfg backdrop_sanitizer" \
    cargo build --release --quiet --target "$triple" --target-dir target/asan -p obs-backdrop -p backdrop-host
PLUGIN_SO=target/asan/$triple/release/libobs_backdrop.so bash scripts/install-plugin.sh target/asan-plugin >/dev/null
host=target/asan/$triple/release/backdrop-render
symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | head -n 1 || true)
run() {
    local name=$1
    shift
    echo "[asan] run $name"
    ASAN_SYMBOLIZER_PATH=$symbolizer \
    ASAN_OPTIONS=detect_leaks=1:malloc_context_size=40:log_path=$out/$name.asan \
        xvfb-run -a "$host" --plugin target/asan-plugin/obs-backdrop --timeout-s 600 \
        --out "$out/$name" "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" || {
        # LeakSanitizer ends the process with its own exit code after a report: judged below
        ls "$out/$name".asan* >/dev/null 2>&1 || { tail -n 20 "$out/$name.stderr" >&2; echo "[asan] $name: the host failed" >&2; exit 1; }
    }
    tail -n 1 "$out/$name.stdout"
}
run storm --input "${portraits[0]}" --canvas 256x256 --frames 60 --min-masks 5 --settings-storm 8
run removal --input "$video" --frames 60 --min-masks 10 --remove-filter-after-frames 45
run churn --input "$video" --loop --frames 60 --churn-filters 20 --churn-sources 5
for name in storm removal churn; do
    [ -s "$out/$name/report.json" ] || { echo "[asan] $name: no report" >&2; exit 1; }
done
shopt -s nullglob
logs=("$out"/*.asan*)
if [ ${#logs[@]} -eq 0 ]; then
    echo "[asan] no sanitizer report in any run"
    exit 0
fi
python3 scripts/asan_report.py "${logs[@]}"
