"""Measure the preprocessing chain against the synthetic ground truth.

For every video of ``DATA/subjects.csv`` (infants the segmentation and pose models never saw: they
train on the extra ``p*`` infants) it runs the config's ``preprocess_pipeline`` and compares with
``DATA/gt/<id>.npz`` (:mod:`gm_plugins.evaluation.preprocessing`):

* mask IoU (soft mask > 0.5 vs the true mask, pooled over the kept frames),
* PCK@0.05 of the image diagonal for the shoulders and hips on the pose keyframes,
* alignment: after the applied transform, is the true trunk (aggregated over the kept frames
  like the estimates are) within 5 degrees of vertical and within 5 % of out_size / scale long?

A video that fails is reported and skipped (exit code 1). With ``--out DIR`` the per-video
figures go to ``DIR/videos.csv`` and the totals to ``DIR/summary.json`` (written last, so a
finished summary means a finished evaluation). ``make preprocessing`` runs it on the 48 infants
of data/gm_synthetic with models trained on data/gm_preprocessing.

Example::

    python tools/analysis_tools/evaluate_preprocessing.py configs/preprocess/<pipeline>.py \
        --data-root data/gm_synthetic --out work_dirs/preprocessing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.datasets.subjects import SubjectsError
from gm_plugins.evaluation import preprocessing as scores
from gm_plugins.utils.config import ConfigError


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is not None:  # a summary from an earlier run must not outlive this one
        (args.out / scores.SUMMARY_FILE).unlink(missing_ok=True)
    tolerances = scores.Tolerances(args.angle_tolerance, args.length_tolerance, args.pck_threshold)
    try:
        summary = scores.evaluate(args.config, args.data_root, tolerances, args.max_videos)
    except (SubjectsError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out is not None:
        scores.write_report(args.out, summary)
    print("\n" + "\n".join(scores.format_summary(summary)))
    for subject, reason in summary["failed"].items():
        print(f"failed: {subject}: {reason}", file=sys.stderr)
    if args.out is not None:
        print(f"wrote {args.out / scores.VIDEOS_FILE} and {args.out / scores.SUMMARY_FILE}")
    return 1 if summary["failed"] or not summary["videos"] else 0


if __name__ == "__main__":
    sys.exit(main())
