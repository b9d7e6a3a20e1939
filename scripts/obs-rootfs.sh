#!/usr/bin/env bash
# Build a Debian root filesystem holding the OBS Studio of a Debian suite, for the test that runs
# Backdrop in the real OBS application on the OBS versions users run:
#
#   trixie   OBS 30.2.3        sid   OBS 32.2.x        (bookworm's 29.0.2 is this machine's own)
#
# Usage: scripts/obs-rootfs.sh SUITE...      -> build/rootfs/SUITE/ (kept between runs)
#
# Made with mmdebstrap from deb.debian.org (installed with apt when missing), variant apt, with
# obs-studio, xvfb, xauth and Mesa's software renderer; documentation and man pages left out. A
# tree whose stamp (suite + package list) matches is kept as it is; anything else is rebuilt in a
# staging folder and swapped in, so an interrupted build never leaves a half tree behind.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[obs-rootfs] %s\n' "$*"; }
die() { printf 'obs-rootfs.sh: error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: scripts/obs-rootfs.sh SUITE... (e.g. trixie sid)"
[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap's root mode, chroot)"

PACKAGES=obs-studio,xvfb,xauth,libgl1-mesa-dri,libegl-mesa0,dbus,fonts-dejavu-core,ca-certificates
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >/dev/null
fi

for SUITE in "$@"; do
    DEST=$ROOT/build/rootfs/$SUITE
    STAMP="$SUITE $PACKAGES"
    if [ -f "$DEST/.backdrop-rootfs" ] && [ "$(cat "$DEST/.backdrop-rootfs")" = "$STAMP" ]; then
        log "$SUITE: kept ($(chroot "$DEST" dpkg-query -W -f '${Version}' obs-studio))"
        continue
    fi
    log "$SUITE: building (downloads about 400 MB)"
    rm -rf "$DEST.tmp"
    mkdir -p "$(dirname "$DEST")"
    # The mirror this machine reaches may serve a sid whose Release has passed its Valid-Until.
    mmdebstrap --variant=apt --include="$PACKAGES" \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        "$SUITE" "$DEST.tmp" "$MIRROR" >"$ROOT/build/rootfs/$SUITE.log" 2>&1 ||
        die "$SUITE: mmdebstrap failed, see build/rootfs/$SUITE.log"
    echo "$STAMP" >"$DEST.tmp/.backdrop-rootfs"
    rm -rf "$DEST"
    mv "$DEST.tmp" "$DEST"
    log "$SUITE: OBS $(chroot "$DEST" dpkg-query -W -f '${Version}' obs-studio), $(du -sh "$DEST" | cut -f1)"
done
