"""Preprocess every video of a dataset once and write the cache that training reads.

Runs the config's ``preprocess_pipeline`` (decode at 6 frames per second, remove the
background, align the body, compute optical flow, check that an infant is in view) on each
video of ``DATA/subjects.csv`` and writes ``OUT/<subject_id>/``. Every row of subjects.csv is
checked first (all bad rows in one error). Videos are streamed with bounded memory, finished
videos are skipped (an interrupted run resumes), and a video that fails or whose worker dies is
reported at the end without stopping the others. Exit code: 0 all done, 1 some videos failed,
2 bad arguments, config or subjects.csv.

Several runs may write one cache at once, on one machine or on many sharing a filesystem: each
video is claimed (``OUT/.claim~<subject_id>``) before it starts, so none is processed twice.
``--shard I/N`` gives a run a fixed share of the subjects (I counts from 0), e.g. one per task of
a Slurm array; ``--check`` then reports, without processing anything, which videos are missing
(exit code 1 if any is).

Example::

    python tools/data/preprocess_videos.py \
        configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py \
        --data-root data/gm_synthetic --out data/gm_synthetic/cache_demo --workers 2

    # four shares, side by side or on four machines, then a check
    python tools/data/preprocess_videos.py CONFIG --data-root DATA --out CACHE --shard 0/4
    ...
    python tools/data/preprocess_videos.py CONFIG --data-root DATA --out CACHE --shard 3/4
    python tools/data/preprocess_videos.py CONFIG --data-root DATA --out CACHE --check
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.preprocess.jobs import run_preprocessing
from gm_plugins.utils.sharding import SHARD_HELP, STALE_SECONDS, shard_argument


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
    parser.add_argument(
        "--shard", type=shard_argument, metavar="I/N", help=SHARD_HELP + " (default: all)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="process nothing: list the videos (of the share, with --shard) that are not cached "
        "yet, with their claims and last failures; exit code 1 if any is missing",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=STALE_SECONDS,
        metavar="SECONDS",
        help="a run refreshes the claims of the videos it works on every minute (every "
        "quarter of this, if shorter); a claim not refreshed for this long, or held by a "
        "process of this machine that is gone, is taken over (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.stale_after <= 0:
        parser.error(f"--stale-after {args.stale_after}: give a positive number of seconds")
    return args


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
        shard=args.shard,
        stale_seconds=args.stale_after,
        check=args.check,
    )


if __name__ == "__main__":
    sys.exit(main())
