"""The shipped configs/preprocess files parse, build and run (random weights, tiny input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from gm_plugins.preprocess.streaming import build_preprocess_pipeline
from gm_plugins.preprocess.transforms import BackgroundRemoval, PoseAlignment
from tests.preprocess.transforms.model_configs import textured_frames

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "preprocess"
pytestmark = pytest.mark.slow


def only(pattern: str) -> Path:
    (path,) = CONFIGS.glob(pattern)
    return path


SEG_CONFIGS = sorted(CONFIGS.glob("fcn_unet-*_synthetic-seg-160x120.py"))
POSE_CONFIGS = sorted(CONFIGS.glob("td-hm_*_synthetic-pose-*.py"))


def test_every_model_size_is_tested():
    assert len(SEG_CONFIGS) == 3 and len(POSE_CONFIGS) == 3


@pytest.mark.parametrize("config", SEG_CONFIGS, ids=lambda path: path.stem)
def test_segmentation_config_runs_in_background_removal(config):
    transform = BackgroundRemoval(config=str(config))
    results = transform(dict(imgs=textured_frames(2, (320, 240))))
    assert results["body_masks"].shape == (2, 240, 320)


@pytest.mark.parametrize("config", POSE_CONFIGS, ids=lambda path: path.stem)
def test_pose_config_runs_in_pose_alignment(config):
    size = int(config.stem.rsplit("x", 1)[1])  # ..._synthetic-pose-192x192
    assert Config.fromfile(str(config)).codec.input_size == (size, size)
    transform = PoseAlignment(config=str(config), out_size=56)
    results = transform(dict(imgs=textured_frames(3, (320, 240)), frame_inds=np.arange(3) * 5))
    assert results["pose_keypoints"].shape == (1, 17, 2) and results["imgs"][0].shape == (56, 56, 3)


def test_demo_pipeline_builds_with_its_models():
    cfg = Config.fromfile(str(only("preprocess_*_synthetic.py")))
    assert cfg.default_scope == "mmaction" and cfg.custom_imports.imports == ["gm_plugins"]
    steps = [dict(step, checkpoint=None) if "checkpoint" in step else dict(step)
             for step in cfg.preprocess_pipeline]  # fmt: skip
    names = [type(t).__name__ for t in build_preprocess_pipeline(steps).transforms]
    assert names == ["DecodeFrames", "BackgroundRemoval", "PoseAlignment", "OpticalFlow"]


def test_paper_pipeline_has_the_papers_settings():
    steps = {
        s["type"]: s
        for s in Config.fromfile(str(only("preprocess_*_paper.py"))).preprocess_pipeline
    }
    assert steps["DecodeFrames"]["target_fps"] == 6.0 and "frame_step" not in steps["DecodeFrames"]
    assert steps["BackgroundRemoval"]["mask_mode"] == "soft"
    alignment = steps["PoseAlignment"]
    assert (alignment["keyframe_interval"], alignment["scale"], alignment["out_size"]) == (
        30,
        3.75,
        224,
    )
    assert alignment["mode"] == "video"
    flow = steps["OpticalFlow"]
    assert flow["algorithm"] == "farneback" and flow["bound"] == 20
    assert (flow["winsize"], flow["poly_n"], flow["poly_sigma"]) == (5, 7, 1.5)
