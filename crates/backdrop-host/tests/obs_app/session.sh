#!/usr/bin/env bash
# One session of the real OBS application for the test `e2e_obs_app`: for each PHASE, start OBS
# (Qt frontend, under xvfb-run) with the user's config in $WORK/home, run the websocket driver's
# PHASE against it, and stop OBS with SIGTERM as a user closing it would. Runs in new network,
# mount and PID namespaces (the caller runs it under `unshare --net --mount --pid --fork
# --mount-proc`): obs-websocket listens on a loopback that nothing outside can reach, and
# `pkill obs` sees only this session's OBS.
#
# Usage: session.sh PHASE...
# Environment:
#   OBS_ROOTFS   / for this machine's OBS, else a tree from scripts/obs-rootfs.sh (chroot)
#   WORK         the session's folder: home/ (HOME of OBS), outputs, logs
#   BINDS        colon-separated absolute folders the OBS inside the tree must see at the same
#                path (the repository, the test data)
#   DRIVER_PY    Python with obsws-python; DRIVER the driver script; PORT, PASSWORD for it
#   OBS_ARGS     extra arguments for obs
#   OBS_WRAPPER  a command to run obs under (e.g. gdb -batch -ex run -ex bt --args), for debugging
#   INSTALL_DEB  a .deb to install into the tree first (dpkg -i), on an overlay that vanishes
#                with the session: the tree stays as scripts/obs-rootfs.sh made it
set -euo pipefail

: "${OBS_ROOTFS:?}" "${WORK:?}" "${DRIVER_PY:?}" "${DRIVER:?}" "${PORT:?}" "${PASSWORD:?}"
ip link set lo up

if [ -n "${INSTALL_DEB:-}" ]; then
    [ "$OBS_ROOTFS" != / ] || { echo "INSTALL_DEB needs a tree, not this machine" >&2; exit 2; }
    overlay=$WORK.overlay
    rm -rf "$overlay"
    mkdir -p "$overlay/upper" "$overlay/work" "$overlay/root"
    mount -t overlay overlay \
        -o "lowerdir=$OBS_ROOTFS,upperdir=$overlay/upper,workdir=$overlay/work" "$overlay/root"
    OBS_ROOTFS=$overlay/root
fi

RUN=()
if [ "$OBS_ROOTFS" != / ]; then
    # This mount namespace's own mounts: they vanish with it.
    mount -t proc proc "$OBS_ROOTFS/proc"
    mount --rbind /dev "$OBS_ROOTFS/dev"
    mount --rbind /sys "$OBS_ROOTFS/sys"
    mount -t tmpfs tmpfs "$OBS_ROOTFS/tmp"
    IFS=: read -r -a binds <<<"${BINDS:-}"
    for b in "${binds[@]}" "$WORK"; do
        [ -n "$b" ] || continue
        mkdir -p "$OBS_ROOTFS$b"
        mount --bind "$b" "$OBS_ROOTFS$b"
    done
    RUN=(chroot "$OBS_ROOTFS")
fi
if [ -n "${INSTALL_DEB:-}" ]; then
    "${RUN[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg -i "$INSTALL_DEB" >"$WORK/dpkg.out" 2>&1
fi

mkdir -p "$WORK/run"
chmod 700 "$WORK/run"

start_obs() {
    local phase=$1
    # A crash leaves a core in $WORK where the kernel writes "core" files to the working folder.
    mkdir -p "$WORK/core-$phase"
    cd "$WORK/core-$phase"
    ulimit -c unlimited
    # shellcheck disable=SC2086 # OBS_ARGS is a list of words
    "${RUN[@]}" env -i HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" \
        XDG_RUNTIME_DIR="$WORK/run" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        xvfb-run -a -s "-screen 0 ${XVFB_SCREEN:-1280x720x24}" \
        ${OBS_WRAPPER:-} obs --minimize-to-tray --disable-updater --multi --disable-shutdown-check \
        --websocket_port "$PORT" --websocket_password "$PASSWORD" --websocket_ipv4_only \
        ${OBS_ARGS:-} >"$WORK/obs-$phase.out" 2>&1 &
    OBS_PID=$!
}

stop_obs() {
    local phase=$1 i
    # OBS closes cleanly on SIGINT (saves the scene collection, unloads its modules).
    pkill -INT -x obs || true
    for i in $(seq 1 600); do
        pgrep -x obs >/dev/null || break
        sleep 0.1
    done
    if pgrep -x obs >/dev/null; then
        echo "obs did not exit within 60 s of SIGINT; killed" >"$WORK/obs-$phase.killed"
        # Where it hangs, for the report: every thread's stack.
        if command -v gdb >/dev/null; then
            timeout 60 gdb -p "$(pgrep -x obs | head -n 1)" -batch -ex "thread apply all bt" \
                >"$WORK/obs-$phase.stacks" 2>&1 || true
        fi
        pkill -KILL -x obs || true
    fi
    local status=0
    wait "$OBS_PID" || status=$?
    echo "$status" >"$WORK/obs-$phase.status"
    # Where it crashed, for the report.
    local core
    core=$(find "$WORK/core-$phase" -maxdepth 1 -name 'core*' | head -n 1)
    if [ -n "$core" ] && command -v gdb >/dev/null; then
        local obs_bin=/usr/bin/obs
        [ "$OBS_ROOTFS" = / ] || obs_bin=$OBS_ROOTFS/usr/bin/obs
        timeout 120 gdb -batch -ex "set sysroot $OBS_ROOTFS" -ex "thread apply all bt 20" \
            "$obs_bin" "$core" >"$WORK/obs-$phase.stacks" 2>&1 || true
    fi
    rm -rf "$WORK/core-$phase"
}

# OBS names its log after the second it started: two starts within one second would write the
# same file. Each phase's log is renamed after its OBS exits ("NN-phase-<OBS's name>"), before the
# next starts, so there is one per start, in order.
LOGS="$WORK/home/.config/obs-studio/logs"
n=0
for phase in "$@"; do
    start_obs "$phase"
    driver_status=0
    "$DRIVER_PY" "$DRIVER" "$phase" || driver_status=$?
    echo "$driver_status" >"$WORK/driver-$phase.status"
    stop_obs "$phase"
    for log in "$LOGS"/*.txt; do
        [ -e "$log" ] || continue
        case $(basename "$log") in [0-9][0-9]-*) continue ;; esac
        mv "$log" "$LOGS/$(printf '%02d' "$n")-$phase-$(basename "$log")"
    done
    n=$((n + 1))
done
