#!/usr/bin/env bash
# Runs each libFuzzer target in fuzz/ (cargo fuzz, AddressSanitizer on) for SECONDS (default 60),
# from the seed corpus kept in fuzz/corpus/TARGET plus a working corpus in
# target/fuzz-corpus/TARGET (new inputs go there, not into the repository), and prints the
# executions per target. A crash, a failed assertion or a sanitizer report fails it; the input
# is kept in fuzz/artifacts/TARGET.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET ...]
# Needs cargo-fuzz (scripts/setup.sh installs it). The one toolchain here is stable; cargo fuzz
# passes nightly flags (-Zsanitizer, coverage instrumentation), which RUSTC_BOOTSTRAP=1 allows.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(manifest settings model_output tensor_packing server_answer)
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz --version >/dev/null 2>&1 || { echo "fuzz: cargo-fuzz is missing (scripts/setup.sh installs it)" >&2; exit 1; }
echo "[fuzz] building ${#targets[@]} targets (AddressSanitizer)"
cargo fuzz build -O --debug-assertions 2>&1 | tail -n 3
for t in "${targets[@]}"; do
    mkdir -p "target/fuzz-corpus/$t"
    log="target/fuzz-corpus/$t.log"
    if ! cargo fuzz run -O --debug-assertions "$t" "target/fuzz-corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "[fuzz] $t FAILED (input in fuzz/artifacts/$t; log $log)" >&2
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*')
    units=$(find "target/fuzz-corpus/$t" -type f | wc -l)
    echo "[fuzz] $t: ${runs:-?} executions in ${secs} s, coverage ${cov:-?} edges, working corpus $units inputs, no crash"
done
