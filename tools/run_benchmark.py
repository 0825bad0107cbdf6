"""Run a shipped experiment end to end: data, preprocessing models, caches, then the experiment.

``table1`` and ``confounding`` (``make table1``, ``make confounding``) are the synthetic benchmark
(:mod:`gm_plugins.experiments.benchmark`: fixed train / validation / test infants, seeds, bootstrap
CIs, paired tests); they share ``--work-dir`` (default work_dirs/benchmark), so the confounding
experiment reuses Table 1's runs of its model. ``demo``, ``preprocessing``, ``table1-demo`` and
``confounding-demo`` (the 48-infant cross-validations) are described in
:mod:`gm_plugins.experiments.shipped`. Every step runs the command a user would run by hand
(printed first) and skips work that is already done: existing datasets and checkpoints (also
from the per-machine model cache), cached videos, finished runs, folds or stages; an
interrupted run resumes from its last checkpoint.

``table1`` and ``confounding`` also keep every finished run in the results store (``results/``
of the repository, :mod:`gm_plugins.experiments.results_store`): a run with a matching record is not
run again, so a long experiment runs in slices (``--budget-minutes``), across machines once
``results/`` is committed; ``--report`` rebuilds the tables from the records alone and
``--verify K`` reruns K stored runs and compares them with their records.

Examples::

    python tools/run_benchmark.py table1 --jobs 2
    python tools/run_benchmark.py table1 --budget-minutes 150   # what fits, then stop
    python tools/run_benchmark.py table1 --report               # from results/ alone
    python tools/run_benchmark.py table1 --verify 2             # rerun 2 stored runs
    python tools/run_benchmark.py table1-demo --folds 5 --jobs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.experiments.benchmark import run_benchmark
from gm_plugins.experiments.results_store import (
    add_store_arguments,
    check_store_arguments,
    store_options,
)
from gm_plugins.experiments.shipped import EXPERIMENTS, Options, run_experiment

BENCHMARK_EXPERIMENTS = ("table1", "confounding")

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("experiment", choices=sorted([*EXPERIMENTS, *BENCHMARK_EXPERIMENTS]))
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="default: work_dirs/benchmark for table1 and confounding, else work_dirs/<experiment>",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="folds or runs trained at once")
    parser.add_argument("--workers", type=int, default=2, help="processes for data and caches")
    parser.add_argument(
        "--retrain-preprocessing",
        action="store_true",
        help="train the segmentation and pose models from their configs instead of taking them "
        "from the model zoo (demo, table1-demo, confounding-demo)",
    )
    add_store_arguments(parser)
    parser.set_defaults(results_dir=ROOT / "results")
    args = parser.parse_args(argv)
    store_flags = args.budget_minutes is not None or args.report or args.verify
    if store_flags and args.experiment not in BENCHMARK_EXPERIMENTS:
        parser.error("--budget-minutes, --report and --verify apply to table1 and confounding")
    check_store_arguments(parser, args)
    if args.retrain_preprocessing and args.experiment in BENCHMARK_EXPERIMENTS:
        parser.error("--retrain-preprocessing applies to demo, table1-demo and confounding-demo")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.experiment in BENCHMARK_EXPERIMENTS:
        work_dir = args.work_dir or Path("work_dirs") / "benchmark"
        return run_benchmark(
            args.experiment,
            ROOT,
            work_dir,
            jobs=args.jobs,
            workers=args.workers,
            **store_options(args),
        )
    options = Options(
        work_dir=args.work_dir or Path("work_dirs") / args.experiment,
        workers=args.workers,
        folds=args.folds,
        seed=args.seed,
        repeats=args.repeats,
        jobs=args.jobs,
        retrain=args.retrain_preprocessing,
    )
    return run_experiment(args.experiment, ROOT, options)


if __name__ == "__main__":
    sys.exit(main())
