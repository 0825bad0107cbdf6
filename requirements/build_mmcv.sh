#!/usr/bin/env bash
# Build (once) and install mmcv 2.1.0 with compiled ops into the active Python.
#
# PyPI ships mmcv 2.1.0 only as an sdist whose setup.py asks for C++17, while
# torch >= 2.14 headers need C++20. We build the wheel from the sdist with the
# flag switched, and cache it outside the repository, keyed by torch version,
# so later installs take seconds.
#
# Usage: PYTHON=.venv/bin/python bash requirements/build_mmcv.sh
set -euo pipefail

PYTHON="$(command -v "${PYTHON:-python}" || echo "${PYTHON:-python}")"
case "$PYTHON" in /*) ;; *) PYTHON="$PWD/$PYTHON" ;; esac
MMCV_VERSION="2.1.0"
TORCH_VERSION="$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])')"
CACHE_DIR="${GM_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gm_plugins/wheels}/torch-${TORCH_VERSION}"

if "$PYTHON" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '${MMCV_VERSION}'" 2>/dev/null; then
    echo "mmcv ${MMCV_VERSION} with ops already installed"
    exit 0
fi

mkdir -p "$CACHE_DIR"
WHEEL="$(ls "$CACHE_DIR"/mmcv-${MMCV_VERSION}-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$WHEEL" ]; then
    echo "Building mmcv ${MMCV_VERSION} with ops against torch ${TORCH_VERSION} (about 17 min on 2 cores)..."
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    "$PYTHON" -m pip download --no-deps --no-binary :all: --no-build-isolation \
        -d "$WORK/src" "mmcv==${MMCV_VERSION}"
    tar -xzf "$WORK"/src/mmcv-${MMCV_VERSION}.tar.gz -C "$WORK"
    sed -i "s/'-std=c++17'/'-std=c++20'/g" "$WORK/mmcv-${MMCV_VERSION}/setup.py"
    grep -q "c++20" "$WORK/mmcv-${MMCV_VERSION}/setup.py"
    (cd "$WORK/mmcv-${MMCV_VERSION}" && \
        MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
        "$PYTHON" -m pip wheel --no-deps --no-build-isolation -w "$WORK/dist" .)
    # Move into place only once complete, so an interrupted build leaves no wheel.
    BUILT="$(ls "$WORK"/dist/mmcv-*.whl)"
    cp "$BUILT" "$CACHE_DIR/.partial.whl"
    mv "$CACHE_DIR/.partial.whl" "$CACHE_DIR/$(basename "$BUILT")"
    WHEEL="$CACHE_DIR/$(basename "$BUILT")"
fi
"$PYTHON" -m pip install --no-deps "$WHEEL"
"$PYTHON" -c "import mmcv.ops; print('mmcv', mmcv.__version__, 'ops OK')"
