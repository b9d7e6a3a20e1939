#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the model-conversion check, and the end-to-end tests
# inside real libobs under an X display (xvfb-run), with real ONNX Runtime, real models and the
# real portraits/videos of ../shared/testdata (override with BACKDROP_TESTDATA).
#
# Usage: scripts/test.sh [extra cargo test args]
# Sets everything up first (scripts/setup.sh; fast when already done).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh
# Missing test data or a missing build fails a test instead of skipping it.
export BACKDROP_REQUIRE_DATA=${BACKDROP_REQUIRE_DATA:-1}
# Hostile input (crates/backdrop-core/tests/hostile_input.rs): a longer generated run first
# (50,000 cases per property, about 10 s; the main run below uses proptest's 256).
PROPTEST_CASES=${BACKDROP_PROPTEST_CASES:-50000} cargo test --release -q -p backdrop-core --test hostile_input
# Fuzzing with AddressSanitizer: each libFuzzer target for 60 s from the seed corpus in
# fuzz/corpus (scripts/fuzz.sh; about 7 minutes with the build).
bash scripts/fuzz.sh "${BACKDROP_FUZZ_SECONDS:-60}"
# The plugin in OBS under valgrind's memcheck: no error in the plugin's code (about 5 minutes).
bash scripts/valgrind.sh
# The plugin and the host built with AddressSanitizer, three runs in OBS with LeakSanitizer
# (about 4 minutes with the build).
bash scripts/asan.sh
# By default show what the passing tests print (the measured IoU, frame counts, timings).
[ $# -gt 0 ] || set -- -- --show-output
if [ -n "${DISPLAY:-}" ]; then
    cargo test --release "$@"
else
    xvfb-run -a -s "-screen 0 1280x720x24" cargo test --release "$@"
fi
