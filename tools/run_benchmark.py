"""Run a shipped experiment end to end: data, preprocessing models, caches, then the experiment.

``table1`` and ``confounding`` (``make table1``, ``make confounding``) are the synthetic benchmark
(:mod:`gm_plugins.apis.benchmark`: fixed train / validation / test infants, seeds, bootstrap
CIs, paired tests); they share ``--work-dir`` (default work_dirs/benchmark), so the confounding
experiment reuses Table 1's runs of its model. ``demo``, ``preprocessing``, ``table1-demo`` and
``confounding-demo`` (the 48-infant cross-validations) are described in
:mod:`gm_plugins.apis.experiments`. Every step runs the command a user would run by hand
(printed first) and skips work that is already done: existing datasets and checkpoints (also
from the per-machine model cache), cached videos, finished runs, folds or stages; an
interrupted run resumes from its last checkpoint.

``table1`` and ``confounding`` also keep every finished run in the results store (``results/``
of the repository, :mod:`gm_plugins.apis.results_store`): a run with a matching record is not
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

from gm_plugins.apis.benchmark import run_benchmark
from gm_plugins.apis.experiments import EXPERIMENTS, Options, run_experiment
from gm_plugins.apis.results_store import ResultsStore

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
    store = parser.add_argument_group("results store (table1, confounding)")
    store.add_argument(
        "--results-dir",
        type=Path,
        default=ROOT / "results",
        help="the results store (default: results/ of the repository)",
    )
    store.add_argument(
        "--budget-minutes",
        type=float,
        help="launch only runs whose measured or estimated time fits in what is left of this "
        "many minutes, then stop (exit 0); run again to go on",
    )
    action = store.add_mutually_exclusive_group()
    action.add_argument(
        "--report",
        action="store_true",
        help="rebuild the tables and figures from the stored records alone (no training); "
        "partial, naming the missing runs, while runs are missing",
    )
    action.add_argument(
        "--verify",
        type=int,
        default=0,
        metavar="K",
        help="rerun K stored runs in temporary work dirs and compare them with their records",
    )
    store.add_argument(
        "--verify-seed", type=int, default=0, help="seed of the draw of --verify's runs"
    )
    store.add_argument(
        "--verify-tolerance",
        type=int,
        default=0,
        help="changed test decisions a verified run may have before the exit code is 1 "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    store_flags = args.budget_minutes is not None or args.report or args.verify
    if store_flags and args.experiment not in BENCHMARK_EXPERIMENTS:
        parser.error("--budget-minutes, --report and --verify apply to table1 and confounding")
    if args.budget_minutes is not None and args.budget_minutes <= 0:
        parser.error("--budget-minutes must be positive")
    if args.verify < 0 or args.verify_tolerance < 0:
        parser.error("--verify and --verify-tolerance must be at least 0")
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
            store=ResultsStore(args.results_dir),
            budget_minutes=args.budget_minutes,
            report=args.report,
            verify=args.verify,
            verify_seed=args.verify_seed,
            verify_tolerance=args.verify_tolerance,
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
