"""Tiny model configs with saved random weights, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.preprocess.transforms import model_configs


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (config, checkpoint) for 'unet', 'fastscnn' (mmseg), 'heatmap', 'simcc' (mmpose)."""
    directory = tmp_path_factory.mktemp("tiny_models")
    models = {}
    for name in ("unet", "fastscnn"):
        config = model_configs.write_seg_config(directory, name)
        models[name] = (
            config,
            model_configs.write_checkpoint("mmseg", config, directory / f"{name}.pth"),
        )
    for name in ("heatmap", "simcc"):
        config = model_configs.write_pose_config(directory, name)
        models[name] = (
            config,
            model_configs.write_checkpoint("mmpose", config, directory / f"{name}.pth"),
        )
    return models


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """12 frames of 64x48 at 30 fps."""
    return model_configs.write_video(
        tmp_path_factory.mktemp("videos") / "clip.mp4", model_configs.textured_frames(12)
    )
