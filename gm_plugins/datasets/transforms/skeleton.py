"""Skeleton input for the pose-based baseline: one window's keypoints from the preprocessing cache.

:class:`LoadCachedKeypoints` turns a ``GMDataset`` window into what MMAction2's skeleton pipeline
expects (``keypoint``, ``keypoint_score``, ``total_frames``, ``img_shape``), so ST-GCN runs on
the same windows, folds and :class:`~gm_plugins.evaluation.SubjectMetric` as the other
classifiers. A typical pipeline::

    dict(type="LoadCachedKeypoints"),
    dict(type="GenSkeFeat", dataset="coco", feats=["j"]),   # (x, y, score) channels
    dict(type="FormatGCNInput", num_person=1),
    dict(type="PackActionInputs", meta_keys=SKELETON_META_KEYS),
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from gm_plugins.datasets.cache import KEYPOINTS_FILE
from gm_plugins.datasets.transforms.loading import _OPEN_VIDEOS

SKELETON_PREPROCESS_CONFIG = (
    "configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_skeleton_demo.py"
)

# What SubjectMetric reads from a window's data sample (subject_id, window_index) and what is
# handy to have in predictions; for PackActionInputs(meta_keys=...).
SKELETON_META_KEYS = ("subject_id", "window_index", "window_start", "img_shape")

# COCO-17 left/right joint pairs (eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


def _missing_keypoints_error(where: str, why: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{where}: {why}. The skeleton baseline needs a cache with a pose estimate on every "
        f"sampled frame: preprocess with {SKELETON_PREPROCESS_CONFIG} (PoseAlignment "
        "keyframe_interval no larger than the source frames between sampled frames, e.g. 5 at "
        "30 fps and 6 fps; 1 estimates every sampled frame at any frame rate) into a new "
        "cache_root, e.g. "
        "tools/data/preprocess_videos.py CONFIG --data-root DATA --out CACHE_skeleton, and point "
        "the dataset's cache_root at it."
    )


@lru_cache(maxsize=512)
def _video_keypoints(cache_root: str, subject_id: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(M, K, 3) estimates, their sorted (M,) cached positions and the frame side, loaded once."""
    video = _OPEN_VIDEOS.get(cache_root, subject_id)
    if not (video.path / KEYPOINTS_FILE).is_file():
        raise _missing_keypoints_error(str(video.path), f"no {KEYPOINTS_FILE} in this cache folder")
    if "keypoint_positions" not in video.meta:
        raise _missing_keypoints_error(
            str(video.path), "meta.json has no 'keypoint_positions' for its keypoints.npy"
        )
    keypoints, positions = video.keypoints
    keypoints = np.array(keypoints, dtype=np.float32)
    order = np.argsort(positions, kind="stable")
    out_size = int(video.meta.get("out_size", video.frames.shape[1]))
    return keypoints[order], positions[order], out_size


def nearest_estimates(available: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each wanted cached position, the index of the nearest available one and its distance.

    Args:
        available: (M,) sorted positions that have an estimate.
        wanted: (T,) positions of the window's frames.

    Returns:
        (T,) indices into ``available`` (ties go to the earlier estimate) and (T,) distances in
        cached frames (0 where the position has its own estimate).
    """
    if len(available) == 0:
        raise ValueError("no pose estimates to choose from")
    right = np.clip(np.searchsorted(available, wanted), 0, len(available) - 1)
    left = np.clip(right - 1, 0, len(available) - 1)
    use_left = np.abs(wanted - available[left]) <= np.abs(available[right] - wanted)
    index = np.where(use_left, left, right)
    return index, np.abs(available[index] - wanted)


@TRANSFORMS.register_module()
class LoadCachedKeypoints(BaseTransform):
    """Read the pose estimates of one window from the cache, as MMAction2 skeleton input.

    The cache (see :mod:`gm_plugins.datasets.cache`) holds COCO-17 estimates in the aligned
    ``out_size`` x ``out_size`` frames (``keypoints.npy``, positions in
    ``meta['keypoint_positions']``). With ``PoseAlignment`` estimating pose on every sampled
    frame (see the skeleton preprocessing configs) every cached frame has one. A window frame
    without its own estimate gets a copy of the nearest estimate in time (x, y and score; ties
    take the earlier one), provided it is at most ``max_gap`` cached frames away (cached frames
    are ``1 / sample_fps`` s apart: 1/6 s at the paper's rate, whatever the camera): a sparse
    cache (e.g. one estimate per 30 source frames, for alignment only) raises instead of
    silently freezing the skeleton.

    Coordinates are normalised as ``(p - out_size / 2) / (out_size / 2)``: the aligned frame's
    centre (the trunk centre) is 0 and its edges are -1 and 1 (PreNormalize2D's range, so do not
    add PreNormalize2D). Aligned frames have a fixed body scale, so no per-window rescaling.

    Required keys: ``cache_root``, ``subject_id``, ``frame_positions`` ((T0,) cached positions).

    Added keys: ``keypoint`` float32 (1, T, 17, 2); ``keypoint_score`` float32 (1, T, 17);
    ``total_frames`` T; ``img_shape`` (out_size, out_size).

    Args:
        clip_len: use the first ``clip_len`` frames of the window (None: all T0 of them).
        max_gap: the farthest (in cached frames) an estimate may be from a window frame that
            lacks one (None: no limit).
        rotate: training augmentation, rotate the skeleton about the frame centre by a random
            angle in ``[-rotate, rotate]`` degrees (0: off).
        scale: training augmentation, scale by a random factor in ``[1 - scale, 1 + scale]``.
        flip_ratio: training augmentation, mirror left-right (x -> -x, left and right joints
            swapped) with this probability.

    Augmentations apply only when ``results['test_mode']`` is False (training windows).
    """

    def __init__(
        self,
        clip_len: int | None = None,
        max_gap: int | None = 2,
        rotate: float = 0.0,
        scale: float = 0.0,
        flip_ratio: float = 0.0,
    ) -> None:
        if clip_len is not None and clip_len < 1:
            raise ValueError(f"clip_len must be >= 1 or None, got {clip_len}")
        if max_gap is not None and max_gap < 0:
            raise ValueError(f"max_gap must be >= 0 or None, got {max_gap}")
        if rotate < 0 or not 0 <= scale < 1 or not 0 <= flip_ratio <= 1:
            raise ValueError(
                f"need rotate >= 0, 0 <= scale < 1, 0 <= flip_ratio <= 1; got {rotate}, {scale}, "
                f"{flip_ratio}"
            )
        self.clip_len = clip_len
        self.max_gap = max_gap
        self.rotate = rotate
        self.scale = scale
        self.flip_ratio = flip_ratio

    def transform(self, results: dict) -> dict:
        cache_root, subject_id = str(results["cache_root"]), str(results["subject_id"])
        estimates, available, out_size = _video_keypoints(cache_root, subject_id)
        wanted = np.asarray(results["frame_positions"], dtype=np.int64)
        if self.clip_len is not None:
            if len(wanted) < self.clip_len:
                raise ValueError(
                    f"{subject_id}: the window has {len(wanted)} frames, fewer than "
                    f"clip_len={self.clip_len}; lengthen the window span or lower clip_len"
                )
            wanted = wanted[: self.clip_len]
        if len(available) == 0:
            raise _missing_keypoints_error(f"{cache_root}/{subject_id}", "keypoints.npy is empty")
        index, gap = nearest_estimates(available, wanted)
        if self.max_gap is not None and gap.max() > self.max_gap:
            raise _missing_keypoints_error(
                f"{cache_root}/{subject_id}",
                f"window frame at cached position {int(wanted[gap.argmax()])} is {int(gap.max())}"
                f" cached frames from the nearest pose estimate (max_gap={self.max_gap})",
            )
        window = estimates[index]  # (T, K, 3), a copy
        half = out_size / 2.0
        points = (window[..., :2] - half) / half
        if not results.get("test_mode", True):
            points = self._augment(points)
        results["keypoint"] = np.ascontiguousarray(points[None], dtype=np.float32)
        results["keypoint_score"] = np.ascontiguousarray(window[None, ..., 2], dtype=np.float32)
        results["total_frames"] = len(wanted)
        results["img_shape"] = (out_size, out_size)
        return results

    def _augment(self, points: np.ndarray) -> np.ndarray:
        """Random flip, rotation and scale of normalised (T, K, 2) points about the origin."""
        if self.flip_ratio and np.random.rand() < self.flip_ratio:
            points = points.copy()
            points[..., 0] *= -1
            if points.shape[1] == 17:
                left, right = np.array(COCO_FLIP_PAIRS).T
                points[:, np.r_[left, right]] = points[:, np.r_[right, left]]
        if self.rotate or self.scale:
            angle = np.deg2rad(np.random.uniform(-self.rotate, self.rotate))
            factor = np.random.uniform(1 - self.scale, 1 + self.scale)
            cos, sin = np.cos(angle) * factor, np.sin(angle) * factor
            points = points @ np.array([[cos, sin], [-sin, cos]], dtype=np.float32)
        return points

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(clip_len={self.clip_len}, max_gap={self.max_gap}, "
            f"rotate={self.rotate}, scale={self.scale}, flip_ratio={self.flip_ratio})"
        )
