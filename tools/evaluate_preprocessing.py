"""Measure the preprocessing chain against the synthetic ground truth.

For every video of ``DATA/subjects.csv`` (infants the segmentation and pose models never saw: they
train on the extra ``p*`` infants) it runs the config's ``preprocess_pipeline`` and compares with
``DATA/gt/<id>.npz``:

* mask IoU (soft mask > 0.5 vs the true mask, pooled over the kept frames),
* PCK@0.05 of the image diagonal for the shoulders and hips on the pose keyframes,
* alignment: after the applied transform, is the true trunk (aggregated over the kept frames
  like the estimates are) within 5 degrees of vertical and within 5 % of out_size / scale long?

Example::

    python tools/evaluate_preprocessing.py configs/preprocess/<pipeline>.py \
        --data-root data/gm_synthetic
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import gm_plugins  # noqa: F401
from gm_plugins.datasets.transforms import (
    PoseAlignment,
    build_preprocess_pipeline,
    preprocess_video,
)
from gm_plugins.datasets.transforms import geometry as geo

TARGETS = dict(iou=0.90, pck=0.90, aligned=0.95)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="config file holding preprocess_pipeline")
    parser.add_argument("--data-root", required=True, type=Path, help="synthetic dataset folder")
    parser.add_argument("--max-videos", type=int, default=None, help="evaluate only the first N")
    parser.add_argument("--angle-tolerance", type=float, default=5.0, help="degrees")
    parser.add_argument("--length-tolerance", type=float, default=0.05, help="relative")
    parser.add_argument("--pck-threshold", type=float, default=0.05, help="of the image diagonal")
    return parser.parse_args(argv)


def mask_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(intersection, union) pixel counts of (N, H, W) masks."""
    predicted, truth = predicted > 0.5, truth > 0
    return int((predicted & truth).sum()), int((predicted | truth).sum())


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


def evaluate(args: argparse.Namespace) -> dict:
    from mmengine.config import Config

    cfg = Config.fromfile(args.config)
    pipeline = build_preprocess_pipeline(cfg.preprocess_pipeline)
    alignment = next(t for t in pipeline.transforms if isinstance(t, PoseAlignment))
    target_length = alignment.out_size / alignment.scale
    with open(args.data_root / "subjects.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[: args.max_videos]
    intersection = union = 0
    hits, aligned, rows_out, seconds = [], [], [], []
    for row in rows:
        start = time.perf_counter()
        results = preprocess_video(pipeline, args.data_root / row["video"])
        seconds.append(time.perf_counter() - start)
        truth = np.load(args.data_root / "gt" / f"{row['subject_id']}.npz")
        i, u = mask_counts(results["body_masks"], truth["masks"][results["frame_inds"]])
        intersection, union = intersection + i, union + u
        video_hits = trunk_hits(results, truth["keypoints"], args.pck_threshold)
        hits.append(video_hits)
        trunk = aligned_trunk(results, truth["keypoints"])
        angle_error = abs(np.degrees(trunk.angle) - 90.0)
        length_error = abs(trunk.length / target_length - 1.0)
        ok = angle_error <= args.angle_tolerance and length_error <= args.length_tolerance
        aligned.append(ok)
        rows_out.append(
            (
                row["subject_id"],
                i / max(u, 1),
                video_hits.mean(),
                angle_error,
                100 * length_error,
                ok,
                results["alignment_fallback"] is not None,
            )
        )
        print(
            f"{row['subject_id']}: IoU {rows_out[-1][1]:.3f}  PCK {rows_out[-1][2]:.3f}  angle "
            f"{angle_error:5.2f} deg  length {100 * length_error:5.2f} %  {'ok' if ok else 'MISS'}"
            f"  ({seconds[-1]:.1f} s)",
            flush=True,
        )
    return dict(
        iou=intersection / max(union, 1),
        pck=float(np.concatenate(hits).mean()),
        aligned=float(np.mean(aligned)),
        videos=len(rows),
        seconds=float(np.mean(seconds)),
        fallbacks=sum(r[-1] for r in rows_out),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = evaluate(args)
    print(
        f"\n{summary['videos']} videos, {summary['seconds']:.1f} s each, "
        f"{summary['fallbacks']} alignment fallback(s)"
    )
    labels = dict(
        iou="mask IoU", pck="PCK@0.05 shoulders+hips", aligned="videos aligned within tolerance"
    )
    for key, label in labels.items():
        verdict = "meets" if summary[key] >= TARGETS[key] else "BELOW"
        print(f"{label:34s} {summary[key]:.3f}  ({verdict} target {TARGETS[key]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
