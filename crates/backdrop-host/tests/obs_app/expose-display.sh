#!/usr/bin/env bash
# OBS_WRAPPER for session.sh's picture phase: leaves the X display that xvfb-run chose, and a copy
# of its cookie, in $HOME/.. (the session's WORK, which the driver outside the tree reads), then
# runs OBS.
set -euo pipefail
cp "$XAUTHORITY" "$HOME/../xauthority"
echo "$DISPLAY" >"$HOME/../display"
exec "$@"
