#!/usr/bin/env bash
# Start NVIDIA Triton Inference Server on obs-backdrop's model repository, on this machine's CPU:
# the tritonserver of the PyPI wheel nvidia-pytriton that scripts/setup.sh installs into
# build/triton/venv, serving build/triton/models (models/convert.py --triton-repository).
#
# Usage: scripts/triton.sh [--repository DIR] [--address ADDR] [--http-port N] [--grpc-port N]
#                          [--metrics-port N] [-- more tritonserver options]
#   defaults: build/triton/models, 127.0.0.1, 8000, 8001, 8002
# The server runs in the foreground (exec); stop it with Ctrl-C or SIGTERM.
#
# What the wheel needs outside its own layout (found on Debian 12 with a pyenv Python):
#   - the python backend's stub is chosen for the venv's Python version and copied beside
#     libtriton_python.so (build/triton/backends/python);
#   - the stub embeds libpython: that interpreter's lib/ goes first on LD_LIBRARY_PATH, or it
#     loads another libpython and dies in multiprocessing;
#   - the venv's bin/ first on PATH and its site-packages on PYTHONPATH, so the embedded
#     interpreter finds numpy and onnxruntime;
#   - nvidia_pytriton.libs (the wheel's bundled libraries) on LD_LIBRARY_PATH.
# It logs CUDA/NVML warnings on a machine without a GPU, then serves on the CPU.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BACKDROP_TRITON_VENV:-$ROOT/build/triton/venv}
REPO=$ROOT/build/triton/models
ADDRESS=127.0.0.1
HTTP=8000
GRPC=8001
METRICS=8002
while [ $# -gt 0 ]; do
    case "$1" in
        --repository) REPO=$2; shift 2 ;;
        --address) ADDRESS=$2; shift 2 ;;
        --http-port) HTTP=$2; shift 2 ;;
        --grpc-port) GRPC=$2; shift 2 ;;
        --metrics-port) METRICS=$2; shift 2 ;;
        --) shift; break ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "triton.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done

PY=$VENV/bin/python
[ -x "$PY" ] || { echo "triton.sh: no $VENV: run scripts/setup.sh" >&2; exit 1; }
[ -d "$REPO" ] || { echo "triton.sh: no model repository $REPO: run scripts/setup.sh" >&2; exit 1; }
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYLIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
SERVER=$SITE/pytriton/tritonserver
STUB=$SERVER/python_backend_stubs/$PYVER/triton_python_backend_stub
[ -x "$STUB" ] || { echo "triton.sh: nvidia-pytriton has no python backend stub for Python $PYVER" >&2; exit 1; }

BACKENDS=$ROOT/build/triton/backends
mkdir -p "$BACKENDS/python"
# Several servers may start at once (the tests run in parallel): each file is written beside
# its place and renamed over it, so no start sees a half-copied file or trips over another's cp.
for f in "$SERVER/backends/python/libtriton_python.so" \
    "$SERVER/backends/python/triton_python_backend_utils.py" "$STUB"; do
    dest=$BACKENDS/python/$(basename "$f")
    if ! cmp -s "$f" "$dest"; then
        cp "$f" "$dest.$$" && mv -f "$dest.$$" "$dest"
    fi
done

export LD_LIBRARY_PATH=$PYLIB:$SITE/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=$VENV/bin:$PATH
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
exec "$SERVER/bin/tritonserver" --model-repository="$REPO" --backend-directory="$BACKENDS" \
    --http-address="$ADDRESS" --http-port="$HTTP" --grpc-address="$ADDRESS" --grpc-port="$GRPC" \
    --metrics-address="$ADDRESS" --metrics-port="$METRICS" --allow-gpu-metrics=false "$@"
