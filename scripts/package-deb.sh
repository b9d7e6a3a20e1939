#!/usr/bin/env bash
# Build the Debian package of obs-backdrop (cmake/ + CPack) and print its path.
#
# Usage: scripts/package-deb.sh
#   Needs cmake (apt-get install cmake), `cargo build --release` and scripts/setup.sh's outputs
#   (build/deps/libonnxruntime.so.1.31.1, build/models/*.onnx, the onnxruntime wheel in
#   build/downloads/); builds nothing with cargo and downloads nothing itself.
#   Output: build/cmake/obs-backdrop_<version>-1_<arch>.deb. Install it with
#   sudo apt install ./build/cmake/obs-backdrop_*.deb
# Environment: CARGO_TARGET_DIR (default target); extra cmake arguments in CMAKE_ARGS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${1:-}" in
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    "") ;;
    *) echo "package-deb.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac
cd "$ROOT"

die() { printf 'package-deb.sh: error: %s\n' "$*" >&2; exit 1; }
command -v cmake >/dev/null 2>&1 && command -v cpack >/dev/null 2>&1 ||
    die "cmake/cpack not found (install the Debian package: apt-get install cmake)"

BUILD=build/cmake
# Progress goes to stderr, so stdout is only the package path.
# Configure fails with a list of what is missing when cargo or setup outputs are absent.
# shellcheck disable=SC2086 # CMAKE_ARGS is a word list on purpose
cmake -S cmake -B "$BUILD" -DCMAKE_INSTALL_PREFIX=/usr ${CMAKE_ARGS:-} >&2 ||
    die "cmake configure failed (see above)"
cmake --build "$BUILD" >&2
deb=$(cat "$BUILD/deb-path.txt")
rm -f "$deb"
cpack --config "$BUILD/CPackConfig.cmake" >&2 || die "cpack failed"
[ -f "$deb" ] || die "cpack did not write $deb"
echo "$deb"
