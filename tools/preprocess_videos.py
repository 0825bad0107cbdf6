"""Preprocess every video of a dataset once and write the cache that training reads.

Runs the config's ``preprocess_pipeline`` (decode every ``frame_step``-th frame, remove the
background, align the body, compute optical flow) on each video of ``DATA/subjects.csv`` and writes
``OUT/<subject_id>/`` with :mod:`gm_plugins.datasets.cache`. Finished videos are skipped, so an
interrupted run resumes; a video that fails is reported at the end and does not stop the others.

Example::

    python tools/preprocess_videos.py \
        configs/preprocess/preprocess_unet-seg_res18-pose_farneback_synthetic.py \
        --data-root data/gm_synthetic --out data/gm_synthetic/cache --workers 2
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import gm_plugins  # noqa: F401  (compat workarounds, registers the transforms)
from gm_plugins.datasets.cache import claim_cache, is_cached
from gm_plugins.datasets.transforms import build_preprocess_pipeline
from gm_plugins.datasets.transforms.preprocess import (
    init_cache_worker,
    preprocess_to_cache,
)

SUBJECT_COLUMNS = ("subject_id", "label", "environment", "video")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="config file holding preprocess_pipeline")
    parser.add_argument("--data-root", required=True, type=Path, help="folder with subjects.csv")
    parser.add_argument("--out", required=True, type=Path, help="cache folder (created)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def read_subjects(data_root: Path) -> list[dict]:
    """Rows of ``DATA/subjects.csv``; raises ValueError naming the file and missing columns."""
    table = data_root / "subjects.csv"
    if not table.is_file():
        raise ValueError(f"{table} not found: --data-root must hold subjects.csv")
    with open(table, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in SUBJECT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{table}: missing column(s) {missing}; expected {SUBJECT_COLUMNS}")
        return list(reader)


def load_pipeline_config(config_path: str) -> list:
    """``preprocess_pipeline`` of an mmengine config (its custom_imports are imported)."""
    from mmengine.config import Config

    if not os.path.isfile(config_path):
        raise ValueError(f"config file not found: {config_path}")
    cfg = Config.fromfile(config_path)
    if "preprocess_pipeline" not in cfg:
        raise ValueError(f"{config_path} has no preprocess_pipeline = [dict(type=...), ...]")
    steps = [
        step.to_dict() if hasattr(step, "to_dict") else dict(step)
        for step in cfg.preprocess_pipeline
    ]
    try:
        build_preprocess_pipeline(
            steps
        )  # cheap (models load lazily); fails before any worker starts
    except Exception as error:
        raise ValueError(f"{config_path}: cannot build preprocess_pipeline: {error}") from error
    return steps


def run(config: str, data_root: Path, out: Path, workers: int = 1, progress: bool = True) -> dict:
    """Preprocess all videos not yet cached; returns counts and the failures."""
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"--workers {workers}: give at least 1")
    pipeline_config = load_pipeline_config(config)
    rows = read_subjects(data_root)
    claim_cache(out, pipeline_config)
    todo = [row for row in rows if not is_cached(out, row["subject_id"])]
    tasks = [(row, str(data_root), str(out)) for row in todo]
    failures, seconds = [], []
    threads = max(1, (os.cpu_count() or 1) // workers)
    bar = tqdm(total=len(tasks), unit="video", disable=not progress, desc="preprocess")
    if workers == 1 or len(tasks) <= 1:
        init_cache_worker(pipeline_config, threads)
        outcomes = map(preprocess_to_cache, tasks)
        pool = None
    else:
        # spawn, not fork: forking a process that already runs OpenMP threads can deadlock.
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=init_cache_worker, initargs=(pipeline_config, threads)
        )
        outcomes = pool.imap_unordered(preprocess_to_cache, tasks)
    try:
        for subject_id, error, elapsed in outcomes:
            if error is None:
                seconds.append(elapsed)
            else:
                failures.append((subject_id, error))
                bar.write(f"FAILED {subject_id}: {error.splitlines()[0]}")
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return dict(
        total=len(rows),
        skipped=len(rows) - len(todo),
        done=len(seconds),
        failures=failures,
        seconds=seconds,
    )


def print_summary(summary: dict, out: Path) -> None:
    mean = sum(summary["seconds"]) / max(1, len(summary["seconds"]))
    print(
        f"{summary['done']} video(s) preprocessed ({mean:.1f} s each), {summary['skipped']} "
        f"already cached, {len(summary['failures'])} failed, of {summary['total']} -> {out}"
    )
    for subject_id, error in summary["failures"]:
        print(f"--- {subject_id} failed:\n{error.rstrip()}", file=sys.stderr)
    if summary["failures"]:
        print(
            "Fix or remove the failed videos and run the same command again to retry them.",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args.config, args.data_root, args.out, args.workers, not args.quiet)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_summary(summary, args.out)
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
