import numpy as np
import pytest
import torch

from gm_plugins.datasets import GMDataset
from gm_plugins.datasets.cache import quantise_flow, read_cached_video, write_cached_video
from tests.datasets.fake_cache import write_fake_dataset

PIPELINE = [dict(type="LoadCachedWindow"), dict(type="PackTwoStreamInputs")]
WINDOW = dict(start_stride=10, span=8, num_windows=None, frame_step=2)


@pytest.fixture
def fake(tmp_path):
    return write_fake_dataset(tmp_path)


def build(data, cache, **kwargs):
    args = dict(
        ann_file="subjects.csv",
        data_root=str(data),
        cache_root=str(cache),
        pipeline=PIPELINE,
        window=WINDOW,
    )
    args.update(kwargs)
    return GMDataset(**args)


def test_windows_of_every_infant(fake):
    dataset = build(*fake)
    # 60 frames, windows need 9 frames (8 + 1): starts 0, 10, ..., 50 -> 0..50 fit: 0,10,20,30,40,50
    assert len(dataset) == 6 * 6
    assert dataset.subject_ids == [f"s{k:03d}" for k in range(6)]
    info = dataset.get_data_info(7)
    assert info["subject_id"] == "s001" and info["window_index"] == 1
    assert info["frame_positions"].tolist() == [5, 6, 7, 8, 9]


def test_a_packed_window_holds_the_right_frames_and_flow(fake):
    sample = build(*fake)[7]  # subject 1 (label FMs), window starting at frame 10
    rgb, flow = sample["inputs"]["rgb"], sample["inputs"]["flow"]
    assert rgb.shape == (1, 3, 16, 16) and rgb.dtype == torch.uint8
    assert flow.shape == (4, 2, 16, 16) and flow.dtype == torch.float32
    assert int(rgb[0, 0, 0, 0]) == 10 + 7  # middle frame: cached position 7
    assert torch.allclose(flow[:, 0], torch.tensor(2 / 4), atol=1e-2)  # label 1 -> 2 px of 4
    assert torch.allclose(flow[:, 1], torch.tensor(-1 / 4), atol=1e-2)
    data_sample = sample["data_samples"]
    assert int(data_sample.gt_label) == 1
    assert data_sample.metainfo["subject_id"] == "s001"
    assert data_sample.metainfo["window_start"] == 10


def test_rgb_only_packing_and_several_rgb_frames(fake):
    pipeline = [
        dict(type="LoadCachedWindow", rgb_frames=3),
        dict(type="PackTwoStreamInputs", streams=("rgb",)),
    ]
    sample = build(*fake, pipeline=pipeline)[0]
    assert set(sample["inputs"]) == {"rgb"}
    assert sample["inputs"]["rgb"][:, 0, 0, 0].tolist() == [1, 2, 3]


def test_splits_never_share_an_infant(fake):
    data, cache = fake
    kwargs = dict(num_folds=2, fold_seed=0, test_fold=0)
    train = set(build(data, cache, split="train", **kwargs).subject_ids)
    test = set(build(data, cache, split="test", **kwargs).subject_ids)
    assert train and test and not train & test
    assert train | test == {f"s{k:03d}" for k in range(6)}


def test_missing_cache_fails_at_build_time_with_the_fix(fake, tmp_path):
    data, _ = fake
    with pytest.raises(FileNotFoundError, match=r"tools/preprocess_videos\.py"):
        build(data, tmp_path / "nowhere")


def test_frame_step_mismatch_is_explained(fake):
    with pytest.raises(ValueError, match="frame_step=2"):
        build(*fake, window=dict(WINDOW, frame_step=5))


def test_short_video_and_bad_label_are_explained(fake, tmp_path):
    data, cache = fake
    with pytest.raises(ValueError, match="shorter than one window"):
        build(data, cache, window=dict(WINDOW, span=100))
    (data / "bad.csv").write_text("subject_id,label,video\ns000,Happy,videos/s000.mp4\n")
    with pytest.raises(ValueError, match="label 'Happy'"):
        build(data, cache, ann_file="bad.csv")
    with pytest.raises(FileNotFoundError, match=r"subjects\.csv"):
        build(tmp_path, cache)


def test_cache_write_is_atomic_and_validated(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="flow must be uint8"):
        write_cached_video(
            tmp_path,
            "s9",
            frames,
            np.zeros((3, 8, 8, 2), np.uint8),
            np.zeros((3, 2, 3)),
            dict(frame_indices=[0, 1, 2], fps=5),
        )
    assert not any(tmp_path.iterdir())  # nothing half-written left behind
    flow = quantise_flow(np.full((2, 8, 8, 2), 50.0), bound=20.0)
    assert flow.max() == 255
    write_cached_video(
        tmp_path, "s9", frames, flow, np.zeros((3, 2, 3)), dict(frame_indices=[0, 1, 2], fps=5)
    )
    video = read_cached_video(tmp_path, "s9")
    assert video.meta["num_frames"] == 3 and video.flow.shape == (2, 8, 8, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["s9"]


@pytest.mark.slow
def test_online_slow_path_preprocesses_missing_videos(tmp_path):
    from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
    from tests.datasets.transforms import model_configs

    data = tmp_path / "data"
    config = GeneratorConfig(subjects=3, seconds=2.0, fps=15, width=64, height=48, seed=5,
                             prep_subjects=0)  # fmt: skip
    generate_dataset(data, config, workers=1, progress=False)
    seg = model_configs.write_seg_config(tmp_path, "unet")
    pose = model_configs.write_pose_config(tmp_path, "heatmap")
    preprocess = [
        dict(type="DecodeFrames", frame_step=3),
        dict(type="BackgroundRemoval", config=str(seg), checkpoint=str(
            model_configs.write_checkpoint("mmseg", seg, tmp_path / "seg.pth"))),
        dict(type="PoseAlignment", config=str(pose), out_size=32, checkpoint=str(
            model_configs.write_checkpoint("mmpose", pose, tmp_path / "pose.pth"))),
        dict(type="OpticalFlow"),
    ]  # fmt: skip
    cache = tmp_path / "cache"
    window = dict(start_stride=0.6, span=0.6, num_windows=None, frame_step=3, unit="seconds")
    dataset = build(data, cache, window=window, preprocess_pipeline=preprocess)
    assert sorted(p.name for p in cache.iterdir()) == ["s0000", "s0001", "s0002"]
    sample = dataset[0]
    assert sample["inputs"]["rgb"].shape == (1, 3, 32, 32)
    assert sample["inputs"]["flow"].shape == (3, 2, 32, 32)
    # a second build reads the cache written by the first
    assert len(build(data, cache, window=window)) == len(dataset)
