"""The whole chain from configs: swapping mmseg / mmpose architectures needs no code change."""

from __future__ import annotations

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from gm_plugins.datasets.cache import dequantise_flow, read_cached_video, write_cached_video
from gm_plugins.preprocess.streaming import (
    build_preprocess_pipeline,
    cache_record,
    preprocess_video,
)

pytestmark = pytest.mark.slow


def chain(tiny_models, seg="unet", pose="heatmap", out_size=32) -> list[dict]:
    seg_config, seg_checkpoint = tiny_models[seg]
    pose_config, pose_checkpoint = tiny_models[pose]
    return [
        dict(type="DecodeFrames", target_fps=15),
        dict(type="BackgroundRemoval", config=str(seg_config), checkpoint=str(seg_checkpoint)),
        dict(
            type="PoseAlignment",
            config=str(pose_config),
            checkpoint=str(pose_checkpoint),
            keyframe_interval=4,
            out_size=out_size,
            min_keypoint_score=-np.inf,
        ),
        dict(type="OpticalFlow", algorithm="dis", bound=20),
    ]


@pytest.mark.parametrize(("seg", "pose"), [("unet", "heatmap"), ("fastscnn", "simcc")])
def test_architectures_are_swapped_by_config_only(tiny_models, tiny_video, seg, pose):
    from mmengine.dataset import Compose

    pipeline = build_preprocess_pipeline(chain(tiny_models, seg, pose))
    assert isinstance(pipeline, Compose)
    results = preprocess_video(pipeline, tiny_video)
    removal, alignment = pipeline.transforms[1], pipeline.transforms[2]
    assert (
        type(removal.runner.model.backbone).__name__
        == {"unet": "UNet", "fastscnn": "FastSCNN"}[seg]
    )
    head = type(alignment.runner.model.head).__name__
    assert head == {"heatmap": "HeatmapHead", "simcc": "SimCCHead"}[pose]
    assert results["frame_inds"].tolist() == [0, 2, 4, 6, 8, 10]
    assert len(results["imgs"]) == 6 and results["imgs"][0].shape == (32, 32, 3)
    assert results["flows"].shape == (5, 32, 32, 2) and np.abs(results["flows"]).max() <= 20
    assert results["body_masks"].shape == (6, 48, 64)
    assert results["pose_keypoints"].shape == (3, 17, 2)


def test_chain_keeps_the_callers_scope(tiny_models, tiny_video, restore_default_scope):
    DefaultScope.get_instance("gm-chain-test", scope_name="mmaction")
    preprocess_video(chain(tiny_models), tiny_video)
    assert DefaultScope.get_current_instance().scope_name == "mmaction"


def test_cache_record_round_trips_through_the_cache(tiny_models, tiny_video, tmp_path):
    results = preprocess_video(chain(tiny_models), tiny_video)
    record = cache_record(results, "videos/clip.mp4")
    meta = record["meta"]
    assert meta["frame_indices"] == [0, 2, 4, 6, 8, 10] and meta["sample_fps"] == 15
    assert meta["fps"] == pytest.approx(30) and meta["total_frames"] == 12
    assert meta["out_size"] == 32 and meta["video"] == "videos/clip.mp4"
    assert meta["flow"] == {"algorithm": "dis", "bound": 20.0}
    alignment = meta["alignment"]
    assert alignment["mode"] == "video" and alignment["fallback"] is None
    assert set(alignment["body_frame"]) >= {"center", "length", "angle"}
    np.testing.assert_allclose(alignment["matrix"], results["alignment_matrix"][0], atol=1e-6)
    write_cached_video(tmp_path, "s0", **record)
    cached = read_cached_video(tmp_path, "s0")
    np.testing.assert_array_equal(cached.frames, np.stack(results["imgs"]))
    np.testing.assert_allclose(dequantise_flow(cached.flow) * 20, results["flows"], atol=20 / 254)
    assert meta["timestamps"] == pytest.approx([i / 30 for i in meta["frame_indices"]])
    assert meta["quality"]["fallback"] is None and meta["quality"]["sampled_frames"] == 6
    keypoints, positions = cached.keypoints
    assert positions.tolist() == meta["keypoint_positions"] == [0, 2, 4]
    assert keypoints.shape == (3, 17, 3)
    matrix = results["alignment_matrix"][2]
    source = results["pose_keypoints"][1]
    expected = source @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(keypoints[1, :, :2], expected, atol=1e-4)
    np.testing.assert_allclose(keypoints[1, :, 2], results["pose_scores"][1])
