#!/usr/bin/env bash
# Build (once) and install mmcv with compiled ops into the given Python.
#
# PyPI ships mmcv 2.1.0 only as an sdist, and its setup.py asks for C++17 while
# torch >= 2.14 headers need C++20. We build the wheel from the sdist with the
# flag switched, against the installed torch (no build isolation, or the build
# has no torch and silently ships without ops), and cache it outside the
# repository, keyed by mmcv, torch and Python version, so later installs take
# seconds.
#
# Usage: PYTHON=.venv/bin/python bash requirements/build_mmcv.sh
# Env:   GM_WHEEL_CACHE (default ~/.cache/gm_plugins/wheels), MAX_JOBS (default 2)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
case "$PYTHON" in /*) ;; */*) PYTHON="$PWD/$PYTHON" ;; *) PYTHON="$(command -v "$PYTHON")" ;; esac
MMCV_VERSION="$(sed -n 's/^mmcv==\([0-9.]*\).*/\1/p' "$HERE/openmmlab.txt")"
TORCH_VERSION="$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])')"
PY_TAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
CACHE_ROOT="${GM_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gm_plugins/wheels}"
CACHE_DIR="$CACHE_ROOT/mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PY_TAG}"

# Checked without importing mmcv: its import needs OpenCV, which a later step installs.
has_compiled_mmcv() {
    "$PYTHON" - "$MMCV_VERSION" <<'PY'
import importlib.metadata, importlib.util, pathlib, sys
assert importlib.metadata.version("mmcv") == sys.argv[1]
package = pathlib.Path(importlib.util.find_spec("mmcv").origin).parent
assert any(package.glob("_ext*.so")), "mmcv has no compiled ops"
PY
}

if has_compiled_mmcv 2>/dev/null; then
    echo "    mmcv ${MMCV_VERSION} with compiled ops is already installed"
    exit 0
fi

mkdir -p "$CACHE_DIR"
WHEEL="$(ls "$CACHE_DIR"/mmcv-"${MMCV_VERSION}"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$WHEEL" ]; then
    echo "    building mmcv ${MMCV_VERSION} with compiled ops against torch ${TORCH_VERSION}:"
    echo "    this takes about 20 minutes on 2 cores, once; the wheel is cached in $CACHE_DIR"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
        -d "$WORK/src" "mmcv==${MMCV_VERSION}"
    tar -xzf "$WORK/src/mmcv-${MMCV_VERSION}.tar.gz" -C "$WORK"
    SRC="$WORK/mmcv-${MMCV_VERSION}"
    sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SRC/setup.py"
    if ! grep -q "c++20" "$SRC/setup.py"; then
        echo "mmcv's setup.py no longer names -std=c++17; check the C++ flag by hand" >&2
        exit 1
    fi
    (cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" \
        "$PYTHON" -m pip wheel --no-deps --no-build-isolation -w "$WORK/dist" .)
    BUILT="$(ls "$WORK"/dist/mmcv-*.whl)"
    # Copy then rename, so an interrupted build never leaves a wheel that looks complete.
    cp "$BUILT" "$CACHE_DIR/.partial"
    mv "$CACHE_DIR/.partial" "$CACHE_DIR/$(basename "$BUILT")"
    WHEEL="$CACHE_DIR/$(basename "$BUILT")"
fi
echo "    installing $WHEEL"
"$PYTHON" -m pip install --quiet --no-deps --force-reinstall "$WHEEL"
if ! has_compiled_mmcv; then
    echo "the installed mmcv lacks its compiled ops (mmcv/_ext*.so); delete $WHEEL and rebuild" >&2
    exit 1
fi
echo "    mmcv ${MMCV_VERSION} with compiled ops installed"
