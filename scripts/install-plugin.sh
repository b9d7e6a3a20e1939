#!/usr/bin/env bash
# Install obs-backdrop as an OBS plugin folder, in the layout OBS Studio searches for user plugins:
#
#   DEST/obs-backdrop/bin/64bit/obs-backdrop.so              target/<profile>/libobs_backdrop.so
#   DEST/obs-backdrop/bin/64bit/libonnxruntime.so.1.31.1     build/deps/ (scripts/setup.sh)
#   DEST/obs-backdrop/data/{locale,effects}/                 repo data/
#   DEST/obs-backdrop/data/models/                           models/*.json, models/LICENSE-*.txt and
#                                                            the .onnx each manifest names, from build/models/
#
# Usage: scripts/install-plugin.sh [DEST]
#   DEST defaults to build/plugin (relative to the repository). For your own OBS:
#   scripts/install-plugin.sh ~/.config/obs-studio/plugins
# Environment: PROFILE (default release), CARGO_TARGET_DIR (default target), PLUGIN_SO (the .so
# to install; default CARGO_TARGET_DIR/PROFILE/libobs_backdrop.so).
#
# Needs a finished build and scripts/setup.sh's downloads; downloads nothing itself. DEST/obs-backdrop
# is replaced as a whole (staged beside it, then swapped), so no stale file survives; when the
# result would be identical nothing is touched.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${1:-}" in
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    "") DEST=$ROOT/build/plugin ;;
    /*) DEST=$1 ;;
    *) DEST=$PWD/$1 ;;
esac
cd "$ROOT"

ORT_VERSION=1.31.1
PROFILE=${PROFILE:-release}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PLUGIN_SO=${PLUGIN_SO:-$TARGET_DIR/$PROFILE/libobs_backdrop.so}
ORT_SO=build/deps/libonnxruntime.so.$ORT_VERSION

log() { printf '[install-plugin] %s\n' "$*"; }
die() { printf 'install-plugin.sh: error: %s\n' "$*" >&2; exit 1; }

# Inputs: everything must exist before anything is touched.
missing=()
build_cmd="cargo build"
[ "$PROFILE" = debug ] || build_cmd="cargo build --profile $PROFILE"
[ "$PROFILE" = release ] && build_cmd="cargo build --release"
[ -f "$PLUGIN_SO" ] || missing+=("$PLUGIN_SO ($build_cmd)")
[ -f "$ORT_SO" ] || missing+=("$ORT_SO (scripts/setup.sh)")
[ -d data ] || missing+=("data/")
manifests=(models/*.json)
[ -f "${manifests[0]}" ] || missing+=("models/*.json")
model_files=()
for manifest in "${manifests[@]}"; do
    [ -f "$manifest" ] || continue
    file=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["file"])' "$manifest") ||
        die "$manifest: cannot read its \"file\""
    model_files+=("build/models/$file")
    [ -f "build/models/$file" ] || missing+=("build/models/$file (scripts/setup.sh)")
done
if [ ${#missing[@]} -gt 0 ]; then
    die "missing: ${missing[*]}"
fi

mkdir -p "$DEST"
final=$DEST/obs-backdrop
stage=$DEST/.obs-backdrop.staging.$$
trap 'rm -rf "$stage" "$final.old.$$"' EXIT

mkdir -p "$stage/bin/64bit" "$stage/data/models"
install -m 755 "$PLUGIN_SO" "$stage/bin/64bit/obs-backdrop.so"
install -m 755 "$ORT_SO" "$stage/bin/64bit/"
cp -R data/. "$stage/data/"
install -m 644 "${manifests[@]}" models/LICENSE-*.txt "${model_files[@]}" "$stage/data/models/"

if [ -d "$final" ] && diff -rq "$stage" "$final" >/dev/null 2>&1; then
    log "$final up to date"
    exit 0
fi
if [ -e "$final" ]; then
    mv "$final" "$final.old.$$"
fi
mv "$stage" "$final"
log "installed $final ($(find "$final" -type f | wc -l) files)"
