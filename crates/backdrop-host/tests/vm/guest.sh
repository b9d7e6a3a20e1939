#!/usr/bin/env bash
# Runs INSIDE the virtme-ng VM started by scripts/vm-test.sh (this machine's filesystem, Debian's
# kernel, the real v4l2loopback module). The user's path, with real programs at both ends:
#   ffmpeg (fake webcam) -> /dev/video11 -> OBS v4l2_input -> Backdrop (colour mode)
#   -> OBS virtualcam_output -> /dev/video10 -> ffmpeg (V4L2 capture) and Chromium (getUserMedia)
# then the webcam's feeder is killed and restarted with a still portrait, and the host is stopped;
# last, the host is started with the module loaded but no loopback device.
# Writes frames and facts under $OUT for crates/backdrop-host/tests/e2e_virtualcam.rs to judge; judges nothing itself
# except "did the event happen before its (generous) timeout".
#
# Environment (set by scripts/vm-test.sh): ROOT, OUT, PLUGIN, VIDEO, PORTRAIT, SIZE (WxH), KEY
# (RRGGBB), FPS (webcam and canvas frame rate), WAIT_S (bound on each wait).
set -uo pipefail
cd "$ROOT"
W=${SIZE%x*}
H=${SIZE#*x}
export HOME=/tmp/home
mkdir -p "$HOME" "$OUT"/{ffmpeg,chromium,resumed}
T0=$SECONDS
FACTS=$OUT/facts.txt
: >"$FACTS"
fact() { echo "$1=$2" >>"$FACTS"; echo "[guest $((SECONDS - T0))s] $1=$2"; }
log() { echo "[guest $((SECONDS - T0))s] $*"; }

# Waits up to WAIT_S for a command to succeed; returns its status.
wait_for() {
    local t=$SECONDS
    until "$@"; do
        ((SECONDS - t < WAIT_S)) || return 1
        sleep 1
    done
}

ip link set lo up
# Chromium needs POSIX shared memory; the VM's /dev comes without /dev/shm.
mountpoint -q /dev/shm || { mkdir -p /dev/shm && mount -t tmpfs -o size=512m tmpfs /dev/shm; }
fact kernel "$(uname -r)"
modprobe v4l2loopback devices=2 video_nr=10,11 exclusive_caps=1,1 \
    card_label="OBS Virtual Camera","Test Webcam" || { fact modprobe failed; exit 1; }
fact module_loaded 1

feeder() { # feeder INPUT-ARGS...: plays into the fake webcam until killed
    ffmpeg -nostdin -v error -re "$@" -vf "fps=$FPS,scale=$W:$H" -pix_fmt yuyv422 -f v4l2 /dev/video11 \
        >>"$OUT/feeder.log" 2>&1 &
    FEEDER=$!
}
feeder -stream_loop -1 -i "$VIDEO"
# caps DEV KIND: whether DEV's device capabilities (not the driver's) include KIND; with
# exclusive_caps=1 a loopback device offers "Video Capture" only while a writer streams into it.
caps() { v4l2-ctl -d "$1" -D 2>/dev/null | sed -n '/Device Caps/,$p' | grep -q "$2"; }
# fmt DEV: the capture format DEV offers, on one line
fmt() { v4l2-ctl -d "$1" --get-fmt-video 2>/dev/null | grep -E 'Width/Height|Pixel Format' | tr -d '\t' | paste -sd';'; }
wait_for caps /dev/video11 'Video Capture'
fact webcam_format "$(fmt /dev/video11)"

# The headless host: webcam source -> Backdrop (colour mode) -> virtual camera, until SIGTERM.
xvfb-run -a -s "-screen 0 640x480x24" target/release/backdrop-render \
    --plugin "$PLUGIN" --out "$OUT/host" --input v4l2:/dev/video11 --webcam-format yuyv \
    --virtualcam --mode color --color "$KEY" --fps "$FPS" --timeout-s "$WAIT_S" \
    >"$OUT/host.log" 2>&1 &
HOST=$!
# The filter's worker runs at nice 10: under emulation it loads its model slowly while OBS
# renders. Clients start once the plugin logs that the model runs.
model_running() { grep -q '\[backdrop\] model .* running' "$OUT/host/obs.log" 2>/dev/null; }
t=$SECONDS
wait_for model_running
fact model_running_after_s $((SECONDS - t))

is_capture() { caps /dev/video10 'Video Capture'; }
if wait_for is_capture; then
    fact vcam_capture_while_running 1
else
    fact vcam_capture_while_running 0
fi
fact vcam_card "$(v4l2-ctl -d /dev/video10 -D 2>/dev/null | grep -m1 'Card type' | sed 's/.*: //')"
fact vcam_format "$(fmt /dev/video10)"

# grab DIR N: N frames from the virtual camera as the V4L2 capture API gives them, decoded to
# RGB24 by ffmpeg; returns 0 when ffmpeg read them all.
grab() {
    timeout 120 ffmpeg -nostdin -v error -f v4l2 -i /dev/video10 -frames:v "$2" \
        -f rawvideo -pix_fmt rgb24 -y "$1/frames.rgb" 2>>"$OUT/grab.log"
}
# keyed FILE: whether the last frame in FILE has the key colour over >= 20 % of its pixels
# (the filter's masks have arrived).
keyed() { python3 "$ROOT/crates/backdrop-host/tests/vm/keyed.py" "$1" "$W" "$H" "$KEY"; }

# 1. ffmpeg reads the virtual camera; wait until the key colour shows (masks are flowing).
t=$SECONDS
until grab /tmp 1 && keyed /tmp/frames.rgb; do
    ((SECONDS - t < WAIT_S)) || break
    sleep 3 # leave the CPU to OBS and the worker (nice 10) under emulation
done
fact ffmpeg_keyed_after_s $((SECONDS - t))
ffmpeg -nostdin -hide_banner -f v4l2 -i /dev/video10 -frames:v 1 -f null - 2>&1 |
    grep -m1 'Video:' | sed 's/^ *//' >"$OUT/ffmpeg/stream.txt"
grab "$OUT/ffmpeg" 6 && fact ffmpeg_frames 6

# 2. Chromium: a local page finds "OBS Virtual Camera" and reads frames through getUserMedia.
# In one process: under emulation its separate network service crashes before the page loads.
python3 "$ROOT/crates/backdrop-host/tests/vm/server.py" 8765 "$ROOT/crates/backdrop-host/tests/vm/page.html" "$OUT/chromium" \
    >"$OUT/chromium/server.log" 2>&1 &
SERVER=$!
chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --use-fake-ui-for-media-stream --disable-dev-shm-usage --user-data-dir=/tmp/chromium-profile \
    --single-process --enable-features=NetworkServiceInProcess \
    "http://127.0.0.1:8765/page.html?key=$KEY&w=$W&h=$H&frames=4&timeout=$WAIT_S" \
    >"$OUT/chromium/chromium.log" 2>&1 &
CHROMIUM=$!
t=$SECONDS
wait_for test -s "$OUT/chromium/result.json"
fact chromium_result_after_s $((SECONDS - t))
kill "$CHROMIUM" "$SERVER" 2>/dev/null
wait "$CHROMIUM" "$SERVER" 2>/dev/null

# 3. The webcam disappears: its feeder is killed; OBS and the virtual camera keep going.
kill -9 "$FEEDER"
wait "$FEEDER" 2>/dev/null
fact feeder_killed_at_s $((SECONDS - T0))
if grab /tmp 3; then fact vcam_frames_after_webcam_gone 3; else fact vcam_frames_after_webcam_gone 0; fi
kill -0 "$HOST" 2>/dev/null && fact host_alive_after_webcam_gone 1 || fact host_alive_after_webcam_gone 0

# 4. A restarted feeder (now a still portrait with a ground-truth mask) resumes the picture.
feeder -loop 1 -i "$PORTRAIT"
t=$SECONDS
until grab "$OUT/resumed" 1 && python3 "$ROOT/crates/backdrop-host/tests/vm/matches.py" "$OUT/resumed/frames.rgb" \
    "$PORTRAIT" "$W" "$H" "$KEY"; do
    ((SECONDS - t < WAIT_S)) || break
    sleep 3
done
fact resumed_after_s $((SECONDS - t))
grab "$OUT/resumed" 3

# 5. Stop: the host ends on SIGTERM, stops the virtual camera and releases both devices
# (xvfb-run passes the host's exit status on).
pkill -TERM -x backdrop-render
t=$SECONDS
wait "$HOST"
fact host_exit "$?"
fact host_stop_s $((SECONDS - t))
kill -9 "$FEEDER" 2>/dev/null
if is_capture; then fact vcam_capture_after_stop 1; else fact vcam_capture_after_stop 0; fi

# 6. No loopback device to write to: the module reloaded with none. The host says so once,
# exits 3, and the filter runs its frames on a video file.
modprobe -r v4l2loopback && modprobe v4l2loopback devices=0
fact loopback_devices_after_reload "$(ls /sys/devices/virtual/video4linux 2>/dev/null | wc -l)"
xvfb-run -a -s "-screen 0 640x480x24" target/release/backdrop-render \
    --plugin "$PLUGIN" --out "$OUT/no_device" --input "$VIDEO" --loop --canvas "$SIZE" \
    --virtualcam --frames 5 --mode color --color "$KEY" --fps "$FPS" --timeout-s "$WAIT_S" \
    >"$OUT/no_device.log" 2>&1
fact no_device_exit "$?"
fact guest_s $((SECONDS - T0))
log done
