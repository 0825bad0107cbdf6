"""LoadCachedKeypoints reads a window's skeletons from the cache; ST-GCN trains and tests on it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from gm_plugins.compat import library_scope
from gm_plugins.datasets import GMDataset, LoadCachedKeypoints
from gm_plugins.datasets.cache import read_cached_video, write_cached_video
from gm_plugins.datasets.transforms.skeleton import COCO_FLIP_PAIRS, SKELETON_META_KEYS
from tests.datasets.fake_cache import write_fake_dataset
from tests.datasets.test_gm_dataset import write_time_based_cache

SIZE = 16  # fake_cache's frame side: normalised p is (p - 8) / 8
# The fake cache is sampled at 5 fps: 1 s strides, 0.8 s windows of 5 frames.
WINDOW = dict(start_stride=1.0, span=0.8, num_windows=None)


def fake_keypoints(subject: int, positions: np.ndarray) -> np.ndarray:
    """(M, 17, 3): x = cached position, y = joint index, score = (subject + 1) / 10."""
    keypoints = np.zeros((len(positions), 17, 3), np.float32)
    keypoints[..., 0] = np.asarray(positions)[:, None]
    keypoints[..., 1] = np.arange(17)[None]
    keypoints[..., 2] = (subject + 1) / 10
    return keypoints


def rewrite_with_keypoints(cache: Path, make_keypoints) -> None:
    """Rewrite every cached video of ``cache`` with the estimates ``make_keypoints`` gives.

    ``make_keypoints(k, num_frames)`` returns the k-th video's positions (M,) and keypoints
    (M, 17, 3).
    """
    for k, folder in enumerate(sorted(p for p in cache.iterdir() if p.is_dir())):
        video = read_cached_video(cache, folder.name)
        positions, keypoints = make_keypoints(k, len(video.frames))
        meta = dict(video.meta, keypoint_positions=np.asarray(positions).tolist())
        write_cached_video(
            cache,
            folder.name,
            np.asarray(video.frames),
            np.asarray(video.flow),
            np.load(folder / "matrices.npy"),
            meta,
            keypoints=keypoints,
        )


def add_keypoints(cache: Path, keep=lambda positions: positions) -> None:
    """Rewrite every cached video of ``cache`` with estimates at ``keep(all positions)``."""

    def make(k: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        positions = np.asarray(keep(np.arange(num_frames)), np.int64)
        return positions, fake_keypoints(k, positions)

    rewrite_with_keypoints(cache, make)


def window(cache: Path, positions, subject: str = "s001", test_mode: bool = True) -> dict:
    return dict(
        cache_root=str(cache),
        subject_id=subject,
        frame_positions=np.asarray(positions),
        test_mode=test_mode,
    )


@pytest.fixture
def skeleton_cache(tmp_path):
    data, cache = write_fake_dataset(tmp_path, size=SIZE)
    add_keypoints(cache)
    return data, cache


def test_a_window_gives_normalised_skeletons_and_scores(skeleton_cache):
    _, cache = skeleton_cache
    results = LoadCachedKeypoints()(window(cache, [5, 6, 7, 8, 9]))
    assert results["keypoint"].shape == (1, 5, 17, 2)
    assert results["keypoint"].dtype == np.float32
    assert results["keypoint_score"].shape == (1, 5, 17)
    assert results["total_frames"] == 5 and results["img_shape"] == (SIZE, SIZE)
    # x was the cached position, y the joint: centred at 8 px and divided by 8 px.
    np.testing.assert_allclose(results["keypoint"][0, :, 0, 0], (np.arange(5, 10) - 8) / 8)
    np.testing.assert_allclose(results["keypoint"][0, 2, :, 1], (np.arange(17) - 8) / 8)
    np.testing.assert_allclose(results["keypoint_score"], 0.2)  # subject s001


def test_clip_len_takes_the_first_frames(skeleton_cache):
    _, cache = skeleton_cache
    results = LoadCachedKeypoints(clip_len=3)(window(cache, [5, 6, 7, 8, 9]))
    assert results["keypoint"].shape == (1, 3, 17, 2) and results["total_frames"] == 3
    np.testing.assert_allclose(results["keypoint"][0, :, 0, 0], (np.arange(5, 8) - 8) / 8)
    with pytest.raises(ValueError, match="clip_len"):
        LoadCachedKeypoints(clip_len=6)(window(cache, [5, 6, 7, 8, 9]))


def test_missing_positions_take_the_nearest_estimate(tmp_path):
    _, cache = write_fake_dataset(tmp_path, size=SIZE)
    add_keypoints(cache, keep=lambda p: p[~np.isin(p, [5, 6, 9])])
    results = LoadCachedKeypoints()(window(cache, [5, 6, 7, 8, 9]))
    # 5 -> 4 (1 away), 6 -> 7 (1 away), 9 -> 8 (tie between 8 and 10: the earlier one).
    x = results["keypoint"][0, :, 0, 0] * 8 + 8
    np.testing.assert_allclose(x, [4, 7, 7, 8, 8])
    np.testing.assert_allclose(results["keypoint_score"], 0.2)  # copied with the estimate


def test_a_sparse_cache_is_rejected_beyond_max_gap(tmp_path):
    # Pose on every 6th cached frame, like the k30 alignment-only cache.
    _, cache = write_fake_dataset(tmp_path, size=SIZE)
    add_keypoints(cache, keep=lambda p: p[::6])
    with pytest.raises(FileNotFoundError, match="max_gap=2") as error:
        LoadCachedKeypoints()(window(cache, [1, 2, 3, 4, 5]))
    assert "k5-s3.75-64_skeleton_demo.py" in str(error.value)
    results = LoadCachedKeypoints(max_gap=None)(window(cache, [1, 2, 3, 4, 5]))
    np.testing.assert_allclose(results["keypoint"][0, :, 0, 0] * 8 + 8, [0, 0, 0, 6, 6])


def test_a_cache_without_keypoints_names_the_folder_and_the_fix(tmp_path):
    _, cache = write_fake_dataset(tmp_path, size=SIZE)
    with pytest.raises(FileNotFoundError) as error:
        LoadCachedKeypoints()(window(cache, [0, 1, 2]))
    message = str(error.value)
    assert str(cache / "s001") in message and "keypoints.npy" in message
    assert "preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_skeleton_demo.py" in message
    assert "keyframe_interval" in message


def test_skeleton_windows_have_one_length_for_every_camera_rate(tmp_path):
    data, cache = write_time_based_cache(tmp_path, (25, 60), size=SIZE)  # 4 s sampled at 6 fps
    add_keypoints(cache)
    dataset = GMDataset(
        ann_file="subjects.csv",
        data_root=str(data),
        cache_root=str(cache),
        window=dict(start_stride=1.0, span=2.0, num_windows=None),  # 12 steps, 13 skeletons
        pipeline=[dict(type="LoadCachedKeypoints")],
    )
    windows = [dataset[i] for i in range(len(dataset))]
    assert [(w["subject_id"], w["window_index"]) for w in windows] == [
        ("cam25", 0), ("cam25", 1), ("cam60", 0), ("cam60", 1)
    ]  # fmt: skip
    assert {w["keypoint"].shape for w in windows} == {(1, 13, 17, 2)}
    # The second window starts 1 s in: cached position 6 (x was the cached position).
    np.testing.assert_allclose(windows[3]["keypoint"][0, :, 0, 0] * 8 + 8, np.arange(6, 19))


def test_training_augmentation_mirrors_and_only_in_training(skeleton_cache):
    _, cache = skeleton_cache
    test = LoadCachedKeypoints(flip_ratio=1.0)(window(cache, [5, 6, 7]))["keypoint"][0]
    flipped = LoadCachedKeypoints(flip_ratio=1.0)(window(cache, [5, 6, 7], test_mode=False))
    flipped = flipped["keypoint"][0]
    np.testing.assert_allclose(test, LoadCachedKeypoints()(window(cache, [5, 6, 7]))["keypoint"][0])
    for left, right in COCO_FLIP_PAIRS:
        np.testing.assert_allclose(flipped[:, left, 0], -test[:, right, 0])
        np.testing.assert_allclose(flipped[:, left, 1], test[:, right, 1])
    np.testing.assert_allclose(flipped[:, 0], test[:, 0] * [-1, 1])  # the nose stays

    np.random.seed(0)
    turned = LoadCachedKeypoints(rotate=10, scale=0.1)(window(cache, [5], test_mode=False))
    radius = np.linalg.norm(turned["keypoint"][0, 0], axis=-1)
    ratio = radius / np.linalg.norm(test[0], axis=-1)
    assert np.allclose(ratio, ratio[0]) and 0.9 <= ratio[0] <= 1.1
    assert not np.allclose(turned["keypoint"][0, 0], test[0])


def tiny_stgcn_config(data: Path, cache: Path, work_dir: Path) -> Config:
    """Two ST-GCN blocks of 8 channels, train on fold 1 and test on fold 0 of 6 fake infants."""
    meta_keys = SKELETON_META_KEYS
    features = [
        dict(type="GenSkeFeat", dataset="coco", feats=["j", "jm"]),
        dict(type="FormatGCNInput", num_person=1),
        dict(type="PackActionInputs", meta_keys=meta_keys),
    ]
    dataset = dict(
        type="GMDataset",
        ann_file="subjects.csv",
        data_root=str(data),
        cache_root=str(cache),
        window=WINDOW,
        num_folds=2,
        test_fold=0,
    )
    train = dict(dataset, split="train", pipeline=[dict(type="LoadCachedKeypoints", rotate=5)])
    train["pipeline"] += copy.deepcopy(features)
    test = dict(dataset, split="test", test_mode=True)
    test["pipeline"] = [dict(type="LoadCachedKeypoints"), *copy.deepcopy(features)]
    loader = dict(batch_size=4, num_workers=0, sampler=dict(type="DefaultSampler", shuffle=False))
    evaluator = dict(type="SubjectMetric")
    return Config(
        dict(
            default_scope="mmaction",
            custom_imports=dict(imports=["gm_plugins"], allow_failed_imports=False),
            work_dir=str(work_dir),
            model=dict(
                type="RecognizerGCN",
                backbone=dict(
                    type="STGCN",
                    graph_cfg=dict(layout="coco", mode="stgcn_spatial"),
                    in_channels=6,
                    base_channels=8,
                    num_stages=2,
                    inflate_stages=[],
                    down_stages=[2],
                ),
                cls_head=dict(type="GCNHead", num_classes=3, in_channels=8),
            ),
            train_dataloader=dict(loader, dataset=train),
            val_dataloader=dict(loader, dataset=test),
            test_dataloader=dict(loader, dataset=test),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=1, val_interval=1),
            val_cfg=dict(type="ValLoop"),
            test_cfg=dict(type="TestLoop"),
            val_evaluator=evaluator,
            test_evaluator=evaluator,
            optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-3)),
            default_hooks=dict(
                checkpoint=dict(type="CheckpointHook", interval=1, by_epoch=False),
                logger=dict(type="LoggerHook", interval=1),
            ),
            log_processor=dict(by_epoch=False),
            env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
            randomness=dict(seed=0),
            log_level="WARNING",
        )
    )


def test_a_packed_skeleton_window_carries_what_subject_metric_reads(skeleton_cache):
    data, cache = skeleton_cache
    cfg = tiny_stgcn_config(data, cache, Path("unused"))
    with library_scope("mmaction"):
        dataset = GMDataset(**{k: v for k, v in cfg.test_dataloader.dataset.items() if k != "type"})
    packed = dataset[1]
    assert tuple(packed["inputs"].shape) == (1, 1, 5, 17, 6)  # clips, persons, T, V, C
    sample = packed["data_samples"]
    info = dataset.get_data_info(1)
    assert sample.subject_id == info["subject_id"] and sample.window_index == 1
    assert int(sample.gt_label) == info["label"]


def add_class_keypoints(cache: Path, shift: float = 4.0, noise: float = 0.5) -> None:
    """Rewrite every cached video with skeletons whose place tells the class.

    The joints form a vertical line (y = 4 ... 12 px by joint index) at x = 8 px, moved by
    ``shift`` px to the left for class 0, down for class 1 and to the right for class 2 (the
    class is subject index % 3, as in ``write_fake_dataset``). Every joint jitters by
    ``noise`` px from frame to frame, so only the class separates the infants.
    """
    moves = {0: (-shift, 0.0), 1: (0.0, shift), 2: (shift, 0.0)}
    rng = np.random.default_rng(0)

    def make(k: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        positions = np.arange(num_frames)
        keypoints = np.zeros((num_frames, 17, 3), np.float32)
        keypoints[..., 0] = SIZE / 2 + moves[k % 3][0]
        keypoints[..., 1] = np.linspace(4, 12, 17)[None] + moves[k % 3][1]
        keypoints[..., :2] += rng.normal(0, noise, (num_frames, 17, 2))
        keypoints[..., 2] = 1.0
        return positions, keypoints

    rewrite_with_keypoints(cache, make)


@pytest.mark.slow
def test_stgcn_learns_class_specific_skeletons_and_subject_metric_scores_it(tmp_path):
    from mmengine.runner import Runner

    data, cache = write_fake_dataset(tmp_path, size=SIZE)
    add_class_keypoints(cache)
    iterations = 40
    cfg = tiny_stgcn_config(data, cache, tmp_path / "run")
    cfg.train_dataloader.sampler.shuffle = True
    cfg.train_cfg.update(max_iters=iterations, val_interval=iterations)
    cfg.default_hooks.checkpoint.interval = iterations
    cfg.optim_wrapper.optimizer.lr = 1e-2
    cfg.test_evaluator = dict(type="SubjectMetric", out_file=str(tmp_path / "subjects.json"))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert (tmp_path / "run" / f"iter_{iterations}.pth").is_file()
    metrics = runner.test()
    assert metrics["subject/num_subjects"] == 3  # fold 0 of 6 infants in 2 folds
    assert metrics["window/num_windows"] == 3 * 6  # 6 s: window starts 0, 1, ..., 5 s
    # Chance is 1/3; here 20 iterations gave 2/3 and 30 got every window right.
    assert metrics["window/accuracy"] >= 0.85
    assert metrics["subject/accuracy"] == 1.0
    assert np.trace(metrics["subject/confusion_matrix"]) == 3
    # The figure is the share of infants whose written decision, the arg max of their mean
    # window score, equals their label.
    subjects = json.loads((tmp_path / "subjects.json").read_text())["subjects"]
    assert [s["num_windows"] for s in subjects] == [6, 6, 6]
    assert all(s["predicted"] == int(np.argmax(s["scores"])) for s in subjects)
    decided = np.mean([s["predicted"] == s["label"] for s in subjects])
    assert metrics["subject/accuracy"] == pytest.approx(decided)
