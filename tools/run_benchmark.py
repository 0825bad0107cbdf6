"""Run a shipped experiment end to end: data, preprocessing models, caches, then the experiment.

Experiments (``make demo``, ``make table1``, ``make confounding``, ``make preprocessing``) are
described in :mod:`gm_plugins.apis.experiments`, which also lists what each one prepares.
Every step runs the command a user would run by hand (printed first) and skips work that is
already done: existing datasets and checkpoints, cached videos, finished folds or stages.

Example::

    python tools/run_benchmark.py table1 --folds 5 --jobs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.apis.experiments import EXPERIMENTS, Options, run_experiment

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--work-dir", type=Path, help="default: work_dirs/<experiment>")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="folds trained at once")
    parser.add_argument("--workers", type=int, default=2, help="processes for data and caches")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        work_dir=args.work_dir or Path("work_dirs") / args.experiment,
        workers=args.workers,
        folds=args.folds,
        seed=args.seed,
        repeats=args.repeats,
        jobs=args.jobs,
    )
    return run_experiment(args.experiment, ROOT, options)


if __name__ == "__main__":
    sys.exit(main())
