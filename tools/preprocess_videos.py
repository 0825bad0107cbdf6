"""Preprocess every video of a dataset once and write the cache that training reads.

Runs the config's ``preprocess_pipeline`` (decode at 6 frames per second, remove the
background, align the body, compute optical flow, check that an infant is in view) on each
video of ``DATA/subjects.csv`` and writes ``OUT/<subject_id>/``. Every row of subjects.csv is
checked first (all bad rows in one error). Videos are streamed with bounded memory, finished
videos are skipped (an interrupted run resumes), and a video that fails or whose worker dies is
reported at the end without stopping the others. Exit code: 0 all done, 1 some videos failed,
2 bad arguments, config or subjects.csv.

Example::

    python tools/preprocess_videos.py \
        configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py \
        --data-root data/gm_synthetic --out data/gm_synthetic/cache_demo --workers 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.apis.preprocessing import run_preprocessing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="config file holding preprocess_pipeline")
    parser.add_argument("--data-root", required=True, type=Path, help="folder with subjects.csv")
    parser.add_argument("--out", required=True, type=Path, help="cache folder (created)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (0: in this process)"
    )
    parser.add_argument(
        "--no-labels", action="store_true", help="subjects.csv may leave labels empty"
    )
    parser.add_argument(
        "--allow-absolute-paths",
        action="store_true",
        help="accept absolute video paths in subjects.csv",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_preprocessing(
        args.config,
        args.data_root,
        args.out,
        workers=args.workers,
        progress=not args.quiet,
        require_labels=not args.no_labels,
        allow_absolute=args.allow_absolute_paths,
    )


if __name__ == "__main__":
    sys.exit(main())
