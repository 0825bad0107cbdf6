"""Scores of the preprocessing chain against the synthetic ground truth.

For every video of a subjects table (infants the segmentation and pose models never saw) the
chain runs and is compared with ``DATA/gt/<id>.npz``:

* mask IoU (soft mask > 0.5 vs the true mask, pooled over the kept frames),
* PCK of the shoulders and hips on the pose keyframes (distance below a fraction of the image
  diagonal),
* alignment: after the applied transform, is the true trunk (aggregated over the kept frames
  like the estimates are) within an angle of vertical and a relative length of
  ``out_size / scale``?

tools/analysis_tools/evaluate_preprocessing.py parses its arguments and calls :func:`evaluate` and
:func:`write_report`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gm_plugins.preprocess import geometry as geo

#: What the chain should reach: pooled mask IoU, PCK, share of videos aligned.
TARGETS = dict(iou=0.90, pck=0.90, aligned=0.95)
#: Columns of ``videos.csv``, one row per evaluated video.
COLUMNS = ("subject_id", "environment", "mask_iou", "pck", "angle_error_deg",
           "length_error_pct", "aligned", "fallback", "seconds")  # fmt: skip
SUMMARY_FILE = "summary.json"
VIDEOS_FILE = "videos.csv"


@dataclass(frozen=True)
class Tolerances:
    """When an estimate counts as right.

    Attributes:
        angle: degrees the aligned trunk may lean from vertical.
        length: relative error of the aligned trunk length.
        pck_threshold: keypoint distance, as a fraction of the image diagonal.
    """

    angle: float = 5.0
    length: float = 0.05
    pck_threshold: float = 0.05


def mask_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(intersection, union) pixel counts of (N, H, W) masks."""
    predicted, truth = predicted > 0.5, truth > 0
    return int((predicted & truth).sum()), int((predicted | truth).sum())


def truth_in_frame_pixels(
    results: dict, masks: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth in the decoded frames' pixels (the decoder may have shrunk the video).

    Args:
        masks: (N, H, W) true masks of the kept frames at the video's size.
        keypoints: (T, K, 3) true keypoints (x, y, visibility) at the video's size.
    """
    height, width = results["original_shape"]
    if masks.shape[1:] == (height, width):
        return masks, keypoints
    resized = np.stack(
        [cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
         for m in masks]
    )  # fmt: skip
    scaled = keypoints.astype(np.float64, copy=True)
    scaled[..., 0] *= width / masks.shape[2]
    scaled[..., 1] *= height / masks.shape[1]
    return resized, scaled


def trunk_hits(results: dict, keypoints: np.ndarray, threshold: float) -> np.ndarray:
    """Per keyframe and trunk point: estimate within ``threshold`` * image diagonal (bool)."""
    height, width = results["original_shape"]
    frames = results["frame_inds"][results["pose_frame_positions"]]
    truth = keypoints[frames][:, list(geo.TRUNK_KEYPOINTS)]
    estimate = results["pose_keypoints"][:, list(geo.TRUNK_KEYPOINTS)]
    distance = np.linalg.norm(estimate - truth[..., :2], axis=-1)
    return (distance < threshold * np.hypot(width, height))[truth[..., 2] > 0]


def aligned_trunk(results: dict, keypoints: np.ndarray) -> geo.BodyFrame:
    """The true trunk of the kept frames, mapped by each frame's matrix, aggregated robustly."""
    truth = keypoints[results["frame_inds"], :, :2]
    moved = np.stack(
        [
            geo.transform_points(m, k)
            for m, k in zip(results["alignment_matrix"], truth, strict=True)
        ]
    )
    centers, lengths, angles, valid = geo.trunk_estimates(moved)
    return geo.aggregate_body_frame(centers[valid], lengths[valid], angles[valid])


def evaluate_video(
    pipeline, target_length: float, data_root: Path, row: dict, tolerances: Tolerances
) -> dict:
    """Run the chain on one video and compare with its ground truth -> one CSV row (+ counts).

    ``target_length`` is the aligned trunk length the chain aims for (out_size / scale), px.
    """
    from gm_plugins.datasets.subjects import resolve_video
    from gm_plugins.preprocess.streaming import preprocess_video

    start = time.perf_counter()
    results = preprocess_video(pipeline, resolve_video(data_root, row["video"]))
    seconds = time.perf_counter() - start
    truth = np.load(data_root / "gt" / f"{row['subject_id']}.npz")
    masks, keypoints = truth_in_frame_pixels(
        results, truth["masks"][results["frame_inds"]], truth["keypoints"]
    )
    intersection, union = mask_counts(results["body_masks"], masks)
    hits = trunk_hits(results, keypoints, tolerances.pck_threshold)
    trunk = aligned_trunk(results, keypoints)
    angle_error = abs(np.degrees(trunk.angle) - 90.0)
    length_error = abs(trunk.length / target_length - 1.0)
    return dict(
        subject_id=row["subject_id"],
        environment=row.get("environment", ""),
        mask_iou=intersection / max(union, 1),
        pck=float(hits.mean()) if hits.size else float("nan"),
        angle_error_deg=float(angle_error),
        length_error_pct=float(100 * length_error),
        aligned=bool(angle_error <= tolerances.angle and length_error <= tolerances.length),
        fallback=results["alignment_fallback"] or "",
        seconds=seconds,
        _intersection=intersection,
        _union=union,
        _hits=hits,
    )


def evaluate(
    config: str | os.PathLike,
    data_root: str | os.PathLike,
    tolerances: Tolerances = Tolerances(),
    max_videos: int | None = None,
) -> dict:
    """Every video of ``DATA/subjects.csv`` -> summary (pooled IoU, PCK, aligned share, failures).

    A video that fails is reported (printed) and counted in ``failed``; the others still count.

    Raises:
        SubjectsError: a bad subjects table (checked whole before any video; labels optional).
        ConfigError: a config without a buildable preprocess_pipeline, or without PoseAlignment.
    """
    from gm_plugins.datasets.subjects import read_subjects
    from gm_plugins.preprocess.chain import load_preprocess_pipeline
    from gm_plugins.preprocess.streaming import build_preprocess_pipeline
    from gm_plugins.preprocess.transforms import PoseAlignment
    from gm_plugins.utils.config import ConfigError

    data_root = Path(data_root)
    rows = read_subjects(data_root / "subjects.csv", data_root, require_label=False)
    rows = rows[:max_videos]
    pipeline = build_preprocess_pipeline(load_preprocess_pipeline(config).steps)
    alignment = next((t for t in pipeline.transforms if isinstance(t, PoseAlignment)), None)
    if alignment is None:
        raise ConfigError(f"{config}: the chain has no PoseAlignment step to score")
    target_length = alignment.out_size / alignment.scale
    done, failed = [], {}
    for row in rows:
        try:
            video = evaluate_video(pipeline, target_length, data_root, row, tolerances)
        except Exception as error:  # one bad video is reported, the others still count
            failed[row["subject_id"]] = f"{type(error).__name__}: {error}"
            print(f"{row['subject_id']}: FAILED ({failed[row['subject_id']]})", flush=True)
            continue
        done.append(video)
        print(
            f"{video['subject_id']}: IoU {video['mask_iou']:.3f}  PCK {video['pck']:.3f}  angle "
            f"{video['angle_error_deg']:5.2f} deg  length {video['length_error_pct']:5.2f} %  "
            f"{'ok' if video['aligned'] else 'MISS'}  ({video['seconds']:.1f} s)",
            flush=True,
        )
    hits = np.concatenate([v["_hits"] for v in done]) if done else np.zeros(0, bool)
    return dict(
        config=str(config),
        data_root=str(data_root),
        iou=sum(v["_intersection"] for v in done) / max(sum(v["_union"] for v in done), 1),
        pck=float(hits.mean()) if hits.size else float("nan"),
        aligned=float(np.mean([v["aligned"] for v in done])) if done else float("nan"),
        videos=len(done),
        seconds=float(np.mean([v["seconds"] for v in done])) if done else float("nan"),
        fallbacks=sum(bool(v["fallback"]) for v in done),
        failed=failed,
        targets=TARGETS,
        rows=[{key: v[key] for key in COLUMNS} for v in done],
    )


def write_report(out_dir: str | os.PathLike, summary: dict) -> None:
    """``videos.csv`` (one row per evaluated video), then ``summary.json`` (atomic, last)."""
    import pandas as pd

    from gm_plugins.utils.io import write_json_atomic, write_text_atomic

    out_dir = Path(out_dir)
    videos = pd.DataFrame.from_records(summary["rows"], columns=list(COLUMNS))
    write_text_atomic(out_dir / VIDEOS_FILE, videos.to_csv(index=False))
    write_json_atomic(out_dir / SUMMARY_FILE, {k: v for k, v in summary.items() if k != "rows"})


def format_summary(summary: dict) -> list[str]:
    """The lines a user reads at the end: counts, and each score against its target."""
    lines = [
        f"{summary['videos']} videos, {summary['seconds']:.1f} s each, "
        f"{summary['fallbacks']} alignment fallback(s), {len(summary['failed'])} failed"
    ]
    labels = dict(
        iou="mask IoU", pck="PCK@0.05 shoulders+hips", aligned="videos aligned within tolerance"
    )
    for key, label in labels.items():
        verdict = "meets" if summary[key] >= TARGETS[key] else "BELOW"
        lines.append(f"{label:34s} {summary[key]:.3f}  ({verdict} target {TARGETS[key]:.2f})")
    return lines
