"""BlackOutBackground, the pose model's training transform, and who imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gm_plugins.datasets.pose_training import BlackOutBackground

REPO_ROOT = Path(__file__).resolve().parents[2]
POSE_CONFIGS = sorted(str(path) for path in (REPO_ROOT / "configs/preprocess").glob("td-hm_*.py"))


def test_black_out_background_keeps_only_the_masked_infant(tmp_path):
    image_path = tmp_path / "mmpose/images/train/a.png"
    mask_path = tmp_path / "mmseg/ann_dir/train/a.png"
    mask_path.parent.mkdir(parents=True)
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 10:20] = 1
    cv2.imwrite(str(mask_path), mask)
    image = np.full((20, 30, 3), 200, np.uint8)
    out = BlackOutBackground(prob=1.0, blur=1)(dict(img=image.copy(), img_path=str(image_path)))
    np.testing.assert_array_equal(out["img"][..., 0] > 0, mask > 0)
    kept = BlackOutBackground(prob=0.0)(dict(img=image.copy(), img_path=str(image_path)))
    np.testing.assert_array_equal(kept["img"], image)
    with pytest.raises(FileNotFoundError, match=r"b\.png"):
        BlackOutBackground(prob=1.0)(
            dict(img=image, img_path=str(image_path).replace("a.png", "b.png"))
        )


def test_only_the_pose_configs_import_mmpose_for_it():
    """``import gm_plugins`` leaves mmpose alone; the td-hm configs' custom_imports register it."""
    script = f"""
import sys
import gm_plugins
assert "mmpose" not in sys.modules, "import gm_plugins imported mmpose"
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
for path in {POSE_CONFIGS!r}:
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    step = Compose(cfg.train_dataloader.dataset.pipeline).transforms[1]
    print(type(step).__module__, type(step).__name__)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert len(POSE_CONFIGS) == 3
    assert done.returncode == 0, done.stderr[-2000:]
    built = done.stdout.strip().splitlines()
    assert built == ["gm_plugins.datasets.pose_training BlackOutBackground"] * len(POSE_CONFIGS)
