"""Tiny mmseg / mmpose config files (two architectures each) and tiny videos for tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from mmengine.config import Config

from tests.stack_configs import TINY_POSE, TINY_UNET

FRAME_SIZE = (64, 48)  # (w, h) of test videos
SEG_TEST_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(64, 48), keep_ratio=True),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]

TINY_FASTSCNN = dict(
    type="EncoderDecoder",
    data_preprocessor=dict(
        type="SegDataPreProcessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size_divisor=32,
    ),
    backbone=dict(
        type="FastSCNN",
        downsample_dw_channels=(8, 8),
        global_in_channels=8,
        global_block_channels=(8, 8, 16),
        global_block_strides=(2, 2, 1),
        global_out_channels=16,
        higher_in_channels=8,
        lower_in_channels=16,
        fusion_out_channels=16,
        out_indices=(0, 1, 2),
        align_corners=False,
    ),
    decode_head=dict(
        type="DepthwiseSeparableFCNHead",
        in_channels=16,
        channels=16,
        concat_input=False,
        num_classes=2,
        in_index=-1,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)


def _pose_pipeline(input_size: tuple[int, int]) -> list[dict]:
    return [
        dict(type="LoadImage"),
        dict(type="GetBBoxCenterScale"),
        dict(type="TopdownAffine", input_size=input_size),
        dict(type="PackPoseInputs"),
    ]


TINY_SIMCC = dict(
    type="TopdownPoseEstimator",
    data_preprocessor=dict(
        type="PoseDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
    ),
    backbone=dict(type="ResNet", depth=18, stem_channels=8, base_channels=8),
    head=dict(
        type="SimCCHead",
        in_channels=64,
        out_channels=17,
        input_size=(64, 64),
        in_featuremap_size=(2, 2),
        simcc_split_ratio=2.0,
        deconv_out_channels=None,
        loss=dict(type="KLDiscretLoss", use_target_weight=True),
        decoder=dict(type="SimCCLabel", input_size=(64, 64), sigma=6.0, simcc_split_ratio=2.0),
    ),
    test_cfg=dict(flip_test=False),
)


def _strip_scope(cfg, scope: str):
    """tests/stack_configs.py names types 'mmseg.X'; a config with default_scope needs none."""
    if isinstance(cfg, dict):
        return {
            key: value.removeprefix(f"{scope}.") if key == "type" else _strip_scope(value, scope)
            for key, value in cfg.items()
        }
    if isinstance(cfg, list | tuple):
        return type(cfg)(_strip_scope(value, scope) for value in cfg)
    return cfg


def seg_configs() -> dict[str, dict]:
    return {"unet": _strip_scope(TINY_UNET, "mmseg"), "fastscnn": copy.deepcopy(TINY_FASTSCNN)}


def pose_configs() -> dict[str, dict]:
    return {"heatmap": _strip_scope(TINY_POSE, "mmpose"), "simcc": copy.deepcopy(TINY_SIMCC)}


def write_seg_config(directory: Path, name: str = "unet") -> Path:
    """A complete mmseg config file for one tiny architecture."""
    path = directory / f"seg_{name}.py"
    Config(
        dict(default_scope="mmseg", model=seg_configs()[name], test_pipeline=SEG_TEST_PIPELINE)
    ).dump(str(path))
    return path


def write_pose_config(directory: Path, name: str = "heatmap") -> Path:
    """A complete mmpose top-down config file for one tiny architecture."""
    path = directory / f"pose_{name}.py"
    model = pose_configs()[name]
    test_dataloader = dict(dataset=dict(type="CocoDataset", pipeline=_pose_pipeline((64, 64))))
    Config(dict(default_scope="mmpose", model=model, test_dataloader=test_dataloader)).dump(
        str(path)
    )
    return path


def write_checkpoint(library: str, config: Path, path: Path) -> Path:
    """Save the randomly initialised weights of ``config``'s model like mmengine does."""
    import torch
    from mmengine.runner import save_checkpoint

    from gm_plugins.preprocess import model_runners as openmmlab_models

    torch.manual_seed(0)
    openmmlab_models.clear_model_cache()
    model = openmmlab_models.load_model(library, config)
    save_checkpoint({"state_dict": model.state_dict(), "meta": {}}, str(path))
    openmmlab_models.clear_model_cache()
    return path


def textured_frames(count: int, size: tuple[int, int] = FRAME_SIZE, seed: int = 0) -> list:
    """RGB uint8 frames: a bright blob moving on a smooth random texture."""
    rng = np.random.default_rng(seed)
    width, height = size
    texture = rng.integers(0, 255, (height // 4, width // 4, 3)).astype(np.uint8)
    import cv2

    background = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)
    frames = []
    for t in range(count):
        frame = background.copy()
        cv2.circle(
            frame, (width // 2 + t, height // 2), min(width, height) // 5, (250, 200, 180), -1
        )
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list, fps: int = 30) -> Path:
    """Encode RGB frames as an H.264 MP4 (PyAV)."""
    from gm_plugins.datasets.synthetic.writer import encode_video

    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(path, frames, fps)
    return path


def write_pipeline_config(path: Path, tiny_models: dict[str, tuple[Path, Path]]) -> Path:
    """A preprocess_pipeline config at ``path``: decode, tiny UNet, tiny pose, flow, gate."""
    seg_config, seg_checkpoint = tiny_models["unet"]
    pose_config, pose_checkpoint = tiny_models["heatmap"]
    pipeline = [
        dict(type="DecodeFrames", target_fps=10),
        dict(type="BackgroundRemoval", config=str(seg_config), checkpoint=str(seg_checkpoint)),
        dict(
            type="PoseAlignment",
            config=str(pose_config),
            checkpoint=str(pose_checkpoint),
            keyframe_interval=6,
            out_size=24,
        ),
        dict(type="OpticalFlow"),
        # random weights give no meaningful mask or pose evidence: only the brightness check
        dict(
            type="InfantPresenceGate",
            min_mask_area=None,
            max_mask_area_cv=None,
            min_keypoint_score=None,
            min_plausible_skeleton=None,
        ),
    ]
    Config(
        dict(
            default_scope="mmaction",
            preprocess_pipeline=pipeline,
            custom_imports=dict(imports=["gm_plugins"], allow_failed_imports=False),
        )
    ).dump(str(path))
    return path
