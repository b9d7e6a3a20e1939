#!/usr/bin/env bash
# A picture of the real OBS application with Backdrop's properties open, for the README: OBS
# under Xvfb with a fresh config and the plugin in the user plugin folder (as the README installs
# it), the talking-head video with a Backdrop filter in blur mode, the Filters dialog opened
# through obs-websocket (crates/backdrop-host/tests/obs_app/driver.py, phase "picture"), and the
# screen taken with xwd once it is still. Needs root (own network namespace, chroot), xdotool and
# xwd (apt install xdotool x11-apps).
#
# Usage: scripts/obs-window-picture.sh [OUT.png]     (default docs/obs-window.png)
#   OBS_ROOTFS   / for this machine's OBS (default), or a tree from scripts/obs-rootfs.sh
#   VIDEO        the video (default: the shared talking-head clip)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:-docs/obs-window.png}
OBS_ROOTFS=${OBS_ROOTFS:-/}
case "$OBS_ROOTFS" in /*) ;; *) OBS_ROOTFS=$ROOT/$OBS_ROOTFS ;; esac
VIDEO=${VIDEO:-$(cd "$ROOT/../shared/testdata/video" && pwd)/talking_head_a.mp4}
for tool in xdotool xwd; do
    command -v "$tool" >/dev/null || { echo "$tool missing: apt install xdotool x11-apps" >&2; exit 1; }
done
PLUGIN=$ROOT/build/plugin/obs-backdrop
[ -f "$PLUGIN/bin/64bit/obs-backdrop.so" ] || { echo "no plugin: run scripts/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/obs-picture.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PORT=4477
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
config=$WORK/home/.config/obs-studio
mkdir -p "$config/plugins" "$config/plugin_config/obs-websocket"
cp -r "$PLUGIN" "$config/plugins/"
# The config OBS reads (see prepare_home in tests/e2e_obs_app.rs): OBS 31 and later keep user
# settings in user.ini and migrate a global.ini without a LastVersion.
major=$(chroot "$OBS_ROOTFS" obs --version 2>/dev/null | grep -o '[0-9]\+\.' | head -n 1 | tr -d .)
if [ "${major:-0}" -ge 31 ]; then
    printf '[General]\nLastVersion=%d\n' $((major << 24)) >"$config/global.ini"
    printf '[General]\nFirstRun=true\nLanguage=en-US\n' >"$config/user.ini"
else
    # obs-websocket 5.0-5.2 (OBS 29, 30) reads its settings from global.ini.
    printf '[General]\nFirstRun=true\nLanguage=en-US\n\n[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\nServerPort=%d\nAlertsEnabled=false\nAuthRequired=true\nServerPassword=%s\n' \
        "$PORT" "$PASSWORD" >"$config/global.ini"
fi
printf '{"first_load":false,"server_enabled":true,"server_port":%d,"alerts_enabled":false,"auth_required":true,"server_password":"%s"}\n' \
    "$PORT" "$PASSWORD" >"$config/plugin_config/obs-websocket/config.json"

here=$ROOT/crates/backdrop-host/tests/obs_app
OBS_ROOTFS=$OBS_ROOTFS WORK=$WORK BINDS="$ROOT:$(dirname "$VIDEO")" DRIVER_PY=$ROOT/.venv/bin/python \
    DRIVER=$here/driver.py PORT=$PORT PASSWORD=$PASSWORD VIDEO=$VIDEO PICTURE=$WORK/screen.xwd \
    OBS_WRAPPER="bash $here/expose-display.sh" XVFB_SCREEN=1600x900x24 \
    timeout 600 unshare --net --mount --pid --fork --mount-proc bash "$here/session.sh" picture
if [ ! -s "$WORK/screen.xwd" ]; then
    cat "$WORK/result-picture.json" >&2 2>/dev/null || true
    echo "no picture: see the log above" >&2
    exit 1
fi
# The windows cover the top-left 1480x880 of the 1600x900 screen.
ffmpeg -loglevel error -y -i "$WORK/screen.xwd" -vf crop=1480:880:0:0 -frames:v 1 "$OUT"
echo "$OUT"
