"""Measure the preprocessing chain against the synthetic ground truth.

For every video of ``DATA/subjects.csv`` (infants the segmentation and pose models never saw: they
train on the extra ``p*`` infants) it runs the config's ``preprocess_pipeline`` and compares with
``DATA/gt/<id>.npz``:

* mask IoU (soft mask > 0.5 vs the true mask, pooled over the kept frames),
* PCK@0.05 of the image diagonal for the shoulders and hips on the pose keyframes,
* alignment: after the applied transform, is the true trunk (aggregated over the kept frames
  like the estimates are) within 5 degrees of vertical and within 5 % of out_size / scale long?

A video that fails is reported and skipped (exit code 1). With ``--out DIR`` the per-video
figures go to ``DIR/videos.csv`` and the totals to ``DIR/summary.json`` (written last, so a
finished summary means a finished evaluation). ``make preprocessing`` runs it on the 48 infants
of data/gm_synthetic with models trained on data/gm_preprocessing.

Example::

    python tools/evaluate_preprocessing.py configs/preprocess/<pipeline>.py \
        --data-root data/gm_synthetic --out work_dirs/preprocessing
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import gm_plugins  # noqa: F401
from gm_plugins.datasets.preprocessing import build_preprocess_pipeline, preprocess_video
from gm_plugins.datasets.subjects import SubjectsError, read_subjects, resolve_video
from gm_plugins.datasets.synthetic.writer import write_csv, write_json
from gm_plugins.datasets.transforms import PoseAlignment
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
    parser.add_argument("--out", type=Path, help="folder for videos.csv and summary.json")
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


COLUMNS = ("subject_id", "environment", "mask_iou", "pck", "angle_error_deg",
           "length_error_pct", "aligned", "fallback", "seconds")  # fmt: skip


def evaluate_video(
    pipeline, target_length: float, data_root: Path, row: dict, args: argparse.Namespace
) -> dict:
    """Run the chain on one video and compare with its ground truth -> one CSV row (+ counts).

    ``target_length`` is the aligned trunk length the chain aims for (out_size / scale), px.
    """
    start = time.perf_counter()
    results = preprocess_video(pipeline, resolve_video(data_root, row["video"]))
    seconds = time.perf_counter() - start
    truth = np.load(data_root / "gt" / f"{row['subject_id']}.npz")
    intersection, union = mask_counts(results["body_masks"], truth["masks"][results["frame_inds"]])
    hits = trunk_hits(results, truth["keypoints"], args.pck_threshold)
    trunk = aligned_trunk(results, truth["keypoints"])
    angle_error = abs(np.degrees(trunk.angle) - 90.0)
    length_error = abs(trunk.length / target_length - 1.0)
    return dict(
        subject_id=row["subject_id"],
        environment=row.get("environment", ""),
        mask_iou=intersection / max(union, 1),
        pck=float(hits.mean()) if hits.size else float("nan"),
        angle_error_deg=float(angle_error),
        length_error_pct=float(100 * length_error),
        aligned=bool(angle_error <= args.angle_tolerance and length_error <= args.length_tolerance),
        fallback=results["alignment_fallback"] or "",
        seconds=seconds,
        _intersection=intersection,
        _union=union,
        _hits=hits,
    )


def evaluate(args: argparse.Namespace) -> dict:
    """Every video of the table -> summary dict (pooled IoU, PCK, aligned share, failures)."""
    from mmengine.config import Config

    # The whole table is checked before any video is evaluated; labels are not needed.
    rows = read_subjects(args.data_root / "subjects.csv", args.data_root, require_label=False)
    rows = rows[: args.max_videos]
    cfg = Config.fromfile(args.config)
    pipeline = build_preprocess_pipeline(cfg.preprocess_pipeline)
    alignment = next(t for t in pipeline.transforms if isinstance(t, PoseAlignment))
    target_length = alignment.out_size / alignment.scale
    done, failed = [], {}
    for row in rows:
        try:
            video = evaluate_video(pipeline, target_length, args.data_root, row, args)
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
        config=str(args.config),
        data_root=str(args.data_root),
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


def write_report(out_dir: Path, summary: dict) -> None:
    """videos.csv (one row per evaluated video), then summary.json (atomic, last)."""
    rows = ([row[key] for key in COLUMNS] for row in summary["rows"])
    write_csv(out_dir / "videos.csv", list(COLUMNS), rows)
    write_json(out_dir / "summary.json", {k: v for k, v in summary.items() if k != "rows"})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is not None:  # a summary from an earlier run must not outlive this one
        (args.out / "summary.json").unlink(missing_ok=True)
    try:
        summary = evaluate(args)
    except SubjectsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out is not None:
        write_report(args.out, summary)
    print(
        f"\n{summary['videos']} videos, {summary['seconds']:.1f} s each, "
        f"{summary['fallbacks']} alignment fallback(s), {len(summary['failed'])} failed"
    )
    labels = dict(
        iou="mask IoU", pck="PCK@0.05 shoulders+hips", aligned="videos aligned within tolerance"
    )
    for key, label in labels.items():
        verdict = "meets" if summary[key] >= TARGETS[key] else "BELOW"
        print(f"{label:34s} {summary[key]:.3f}  ({verdict} target {TARGETS[key]:.2f})")
    for subject, reason in summary["failed"].items():
        print(f"failed: {subject}: {reason}", file=sys.stderr)
    if args.out is not None:
        print(f"wrote {args.out / 'videos.csv'} and {args.out / 'summary.json'}")
    return 1 if summary["failed"] or not summary["videos"] else 0


if __name__ == "__main__":
    sys.exit(main())
