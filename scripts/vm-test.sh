#!/usr/bin/env bash
# Boots Debian's kernel with the real v4l2loopback module in a VM (virtme-ng over QEMU, this
# machine's own filesystem as the VM's root) and runs crates/backdrop-host/tests/vm/guest.sh there: a fake webcam,
# the headless host with Backdrop and OBS's virtual camera, ffmpeg and Chromium reading it.
#
# Usage: scripts/vm-test.sh OUT_DIR
# Needs what scripts/setup.sh installs (qemu-system-x86, linux-image-amd64, v4l2loopback-dkms,
# chromium, v4l-utils, virtme-ng in .venv) and a release build with the plugin folder.
# Environment: BACKDROP_TESTDATA (default ../shared/testdata), VM_WAIT_S (each wait's bound in
# the guest, default 300), VM_ACCEL (kvm | tcg; default: kvm when it works here, else tcg).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
TESTDATA=$(cd "${BACKDROP_TESTDATA:-$ROOT/../shared/testdata}" && pwd)
VNG=$ROOT/.venv/bin/vng
[ -x "$VNG" ] || { echo "vm-test: $VNG missing (run scripts/setup.sh)" >&2; exit 2; }
# The newest installed Debian kernel that has a v4l2loopback module built by dkms.
KVER=
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V); do
    find "/lib/modules/$k" -name 'v4l2loopback.ko*' 2>/dev/null | grep -q . && KVER=$k
done
[ -n "$KVER" ] || { echo "vm-test: no /boot/vmlinuz-* with a v4l2loopback module (run scripts/setup.sh)" >&2; exit 2; }

# KVM when it works (a developer's Linux box); nested KVM fails on some hosts, so probe it with
# a real boot of the same kernel. Else TCG emulation with a CPU model without AVX: llvmpipe's
# JIT crashes under TCG's default -cpu max.
accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    if [ -w /dev/kvm ] && timeout 120 "$VNG" --force-9p --run "/boot/vmlinuz-$KVER" --memory 1G \
        --exec true >/dev/null 2>&1; then
        accel=kvm
    fi
fi
vm_args=(--force-9p --run "/boot/vmlinuz-$KVER" --memory 4G --cpus 2 --rwdir "$OUT")
if [ "$accel" = tcg ]; then
    vm_args+=(--disable-kvm --qemu-opts="-cpu Nehalem")
fi
echo "vm-test: kernel $KVER, accel $accel, out $OUT"
cat >"$OUT/env.sh" <<ENV
export ROOT='$ROOT' OUT='$OUT' PLUGIN='${PLUGIN:-$ROOT/build/plugin/obs-backdrop}'
export VIDEO='$TESTDATA/video/talking_head_a.mp4' PORTRAIT='$TESTDATA/portraits/images/102.jpg'
export SIZE=320x320 KEY=00FF00 FPS=10 WAIT_S=${VM_WAIT_S:-300}
ENV
echo "accel=$accel" >"$OUT/vm.txt"
PATH=$ROOT/.venv/bin:$PATH timeout 1500 "$VNG" "${vm_args[@]}" \
    --exec "bash -c '. $OUT/env.sh && bash $ROOT/crates/backdrop-host/tests/vm/guest.sh'" 2>&1 | tee "$OUT/vm.log"
