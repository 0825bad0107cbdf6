"""The two chain drivers: streamed into the cache, and in memory, give the same entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gm_plugins.datasets.cache import read_cached_video, write_cached_video
from gm_plugins.preprocess import streaming as preprocessing
from gm_plugins.preprocess.streaming import (
    build_preprocess_pipeline,
    cache_record,
    preprocess_to_cache,
    preprocess_video,
    streamable_steps,
)
from tests.preprocess.transforms.conftest import tiny_models  # noqa: F401  (session fixture)
from tests.preprocess.transforms.model_configs import textured_frames, write_video

pytestmark = pytest.mark.slow


def chain(tiny_models, **alignment):  # noqa: F811
    seg_config, seg_checkpoint = tiny_models["unet"]
    pose_config, pose_checkpoint = tiny_models["heatmap"]
    return [
        dict(type="DecodeFrames", target_fps=10),
        dict(
            type="BackgroundRemoval",
            config=str(seg_config),
            checkpoint=str(seg_checkpoint),
            batch_size=4,
        ),
        dict(
            type="PoseAlignment",
            config=str(pose_config),
            checkpoint=str(pose_checkpoint),
            keyframe_interval=6,
            out_size=24,
            batch_size=2,
            **alignment,
        ),
        dict(type="OpticalFlow", bound=4.0),
        dict(type="InfantPresenceGate"),
    ]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(
        tmp_path_factory.mktemp("stream") / "clip.mp4", textured_frames(40, seed=3), fps=30
    )


@pytest.mark.parametrize(
    "alignment",
    [
        dict(),  # random weights: no confident trunk, the fallback centres on the masks
        dict(min_keypoint_score=-np.inf),  # every estimate used: a real similarity per video
        dict(min_keypoint_score=-np.inf, mode="window", window_length=15),
    ],
)
def test_streamed_entry_equals_the_in_memory_one(tmp_path, tiny_models, video, alignment):  # noqa: F811
    steps = chain(tiny_models, **alignment)
    record = cache_record(preprocess_video(steps, video), "clip.mp4")
    write_cached_video(tmp_path / "memory", "s0", **record)
    meta = preprocess_to_cache(
        steps, video, tmp_path / "stream", "s0", dict(label="WMs"), "clip.mp4", chunk_frames=5
    )
    in_memory = read_cached_video(tmp_path / "memory", "s0")
    streamed = read_cached_video(tmp_path / "stream", "s0")
    assert streamed.frames.shape == in_memory.frames.shape == (14, 24, 24, 3)
    assert meta["label"] == "WMs" and meta["sample_fps"] == 10.0
    for key in (
        "frame_indices",
        "timestamps",
        "fps",
        "total_frames",
        "video",
        "keypoint_positions",
    ):
        assert streamed.meta[key] == in_memory.meta[key], key
    np.testing.assert_allclose(
        np.load(streamed.path / "matrices.npy"), np.load(in_memory.path / "matrices.npy"), atol=1e-3
    )
    difference = np.abs(streamed.frames.astype(int) - in_memory.frames.astype(int))
    assert difference.mean() < 0.5
    flow_difference = np.abs(streamed.flow.astype(int) - in_memory.flow.astype(int))
    assert flow_difference.mean() < 1.0
    quality = streamed.meta["quality"]
    assert quality["sampled_frames"] == 14 and quality["mask_area_median"] is not None
    assert quality["mask_area_median"] == pytest.approx(
        in_memory.meta["quality"]["mask_area_median"], abs=0.02
    )
    for figure in ("background_change", "body_change"):  # chunks follow on: 13 pairs either way
        assert quality[figure] is not None
        assert quality[figure] == pytest.approx(in_memory.meta["quality"][figure], abs=0.02)


def test_chunks_never_exceed_their_size(tmp_path, tiny_models, video, monkeypatch):  # noqa: F811
    """Pass 2 holds one chunk of frames (a multiple of the segmentation batch) at a time."""
    sizes = []
    built = build_preprocess_pipeline(chain(tiny_models))
    background = streamable_steps(built).background
    real = background.mask_frames

    def recording(frames, masks=None, keep_masks=False, **options):
        sizes.append(len(frames))
        return real(frames, masks, keep_masks, **options)

    monkeypatch.setattr(background, "mask_frames", recording)
    preprocess_to_cache(built, video, tmp_path, "s0", chunk_frames=5)
    assert max(sizes) == 8 and sum(sizes[-4:]) >= 14  # 5 rounded up to 2 batches of 4
    sizes.clear()
    height, width = read_cached_video(tmp_path, "s0").meta["original_shape"]
    monkeypatch.setattr(preprocessing, "CHUNK_BYTES", 3 * height * width * 3)
    preprocess_to_cache(built, video, tmp_path, "s1", chunk_frames=64)
    assert max(sizes) == 4  # large frames: 3 frames fit the byte budget, one batch of 4


def test_chains_that_cannot_stream_run_in_memory(tmp_path, tiny_models, video, monkeypatch):  # noqa: F811
    steps = chain(tiny_models)
    steps[1]["temporal_smoothing"] = 3
    assert streamable_steps(build_preprocess_pipeline(steps)) is None
    calls = []
    real = preprocessing.preprocess_video
    monkeypatch.setattr(preprocessing, "preprocess_video", lambda *a: calls.append(1) or real(*a))
    meta = preprocess_to_cache(steps, video, tmp_path, "s0")
    assert calls and meta["num_frames"] == 14
    assert read_cached_video(tmp_path, "s0").frames.shape[0] == 14


def test_pass_two_reuses_the_frames_of_pass_one_when_they_fit(
    tmp_path,
    tiny_models,  # noqa: F811
    video,
    monkeypatch,
):
    """Small videos are decoded once; the entry is the one of decoding twice."""
    built = build_preprocess_pipeline(chain(tiny_models, min_keypoint_score=-np.inf))
    decodes = []
    real = preprocessing._sampled_frames

    def counting(*args):
        decodes.append(1)
        return real(*args)

    monkeypatch.setattr(preprocessing, "_sampled_frames", counting)
    preprocess_to_cache(built, video, tmp_path, "once", chunk_frames=5)
    assert len(decodes) == 1
    decodes.clear()
    monkeypatch.setattr(preprocessing, "KEEP_DECODED_BYTES", 1000)  # not even one frame
    spilled = []
    real_start = preprocessing._SpilledFrames.start.__func__

    def recording_start(cls, frames):
        spilled.append(real_start(cls, frames))
        return spilled[-1]

    monkeypatch.setattr(preprocessing._SpilledFrames, "start", classmethod(recording_start))
    preprocess_to_cache(built, video, tmp_path, "spilled", chunk_frames=5)
    assert len(decodes) == 1  # beyond the memory budget the frames went to a temporary file
    assert spilled[0] is not None and spilled[0].count == 14 and spilled[0].file.closed
    decodes.clear()
    monkeypatch.setattr(preprocessing, "SPILL_BYTES", 0)  # no temporary file either
    preprocess_to_cache(built, video, tmp_path, "twice", chunk_frames=5)
    assert len(decodes) == 2
    once = read_cached_video(tmp_path, "once")
    for name in ("spilled", "twice"):
        other = read_cached_video(tmp_path, name)
        np.testing.assert_array_equal(once.frames, other.frames)
        np.testing.assert_array_equal(once.flow, other.flow)
        assert once.meta["alignment"] == other.meta["alignment"]


def test_spilling_stops_when_the_disk_runs_low(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocessing, "_in_memory_filesystem", lambda folder: False)
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(5)]
    spilled = preprocessing._SpilledFrames.start(list(frames))
    assert spilled is not None and spilled.count == 5 and spilled.nbytes == 5 * 72
    assert [int(frame[0, 0, 0]) for frame in spilled] == [0, 1, 2, 3, 4] and spilled.file.closed
    monkeypatch.setattr(preprocessing, "SPILL_FREE_BYTES", 2**62)  # more than any disk has
    assert preprocessing._SpilledFrames.start(list(frames)) is None
    monkeypatch.setattr(preprocessing, "SPILL_FREE_BYTES", 0)
    monkeypatch.setattr(preprocessing, "SPILL_BYTES", 3 * 72)
    assert preprocessing._SpilledFrames.start(list(frames)) is None  # larger than allowed
    spilled = preprocessing._SpilledFrames.start(frames[:3])
    spilled.append(frames[3])
    assert not spilled.has_room()
    with pytest.raises(ValueError, match="shape"):
        spilled.append(np.zeros((2, 2, 3), np.uint8))


def test_no_spilling_into_a_temporary_folder_held_in_memory(monkeypatch):
    mounts = Path("/proc/mounts").read_text().splitlines()
    shm_is_tmpfs = any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts)
    assert preprocessing._in_memory_filesystem("/dev/shm") == shm_is_tmpfs
    assert preprocessing._in_memory_filesystem("/dev/shm/sub/folder") == shm_is_tmpfs
    monkeypatch.setattr(preprocessing, "_in_memory_filesystem", lambda folder: True)
    assert preprocessing._SpilledFrames.start([np.zeros((2, 2, 3), np.uint8)]) is None


def test_a_large_video_is_preprocessed_at_the_decoder_s_size(tmp_path, tiny_models):  # noqa: F811
    """DecodeFrames(max_side) shrinks frames once, while decoding; both paths record it."""
    large = write_video(tmp_path / "large.mp4", textured_frames(20, size=(128, 96), seed=5))
    steps = chain(tiny_models, min_keypoint_score=-np.inf)
    steps[0] = dict(steps[0], max_side=64)
    meta = preprocess_to_cache(steps, large, tmp_path / "stream", "s0", chunk_frames=4)
    in_memory = preprocess_video(steps, large)
    assert meta["original_shape"] == [48, 64] and meta["source_shape"] == [96, 128]
    assert meta["decode_scale"] == pytest.approx(0.5)
    assert in_memory["original_shape"] == (48, 64)
    assert in_memory["source_shape"] == (96, 128)
    # keypoints and matrices are in the decoded frames' pixels
    keypoints = np.asarray(in_memory["pose_keypoints"])
    assert keypoints[..., 0].max() <= 64 and keypoints[..., 1].max() <= 48
    streamed = read_cached_video(tmp_path / "stream", "s0")
    np.testing.assert_allclose(
        np.load(streamed.path / "matrices.npy"), in_memory["alignment_matrix"], atol=1e-3
    )
