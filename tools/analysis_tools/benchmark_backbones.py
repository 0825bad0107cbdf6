"""Backbone leaderboard: cost, speed and cross-validated infant accuracy of two-stream configs.

For each config: parameters and FLOPs of one window at its model.input_shapes, training
samples/s and inference windows/s on random windows (--threads torch threads), and a
cross-validation by infant on folds shared by every config (WORK_DIR/cv, as
tools/cross_validate.py runs it). Writes WORK_DIR/leaderboard.md, .csv and .png (accuracy
against speed). A rerun measures and trains only what is missing: figures are kept in
WORK_DIR/figures/, finished folds in WORK_DIR/cv/
(:mod:`gm_plugins.experiments.backbone_benchmark`). Every figure and finished fold is also recorded
in the results store (results/backbones/ of the repository,
:mod:`gm_plugins.experiments.results_store`), and a matching record stands in for it, so the
leaderboard can be built in slices (--budget-minutes) on several machines once results/ is
committed; --report rebuilds it from the records alone, --verify K reruns K stored folds.

Examples::

    python tools/analysis_tools/benchmark_backbones.py --work-dir work_dirs/backbones   # demo + \
        configs/backbones
    python tools/analysis_tools/benchmark_backbones.py CONFIG ... --work-dir W --folds 5 --jobs 2
    python tools/analysis_tools/benchmark_backbones.py --work-dir W --skip-cv   # cost and speed \
        only
    python tools/analysis_tools/benchmark_backbones.py --work-dir W --budget-minutes 150
    python tools/analysis_tools/benchmark_backbones.py --work-dir W --report
    python tools/analysis_tools/benchmark_backbones.py --work-dir W --verify 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.experiments.backbone_benchmark import BackboneBenchmark, benchmark_backbones
from gm_plugins.experiments.backbone_cost import SpeedSettings
from gm_plugins.experiments.cross_validation import add_fold_arguments
from gm_plugins.experiments.results_store import (
    add_store_arguments,
    check_store_arguments,
    store_options,
)

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "configs",
        nargs="*",
        help="two-stream configs (default: the demo config and configs/backbones/*.py)",
    )
    add("--work-dir", required=True, type=Path, help="figures, cross-validation, leaderboard")
    add_fold_arguments(parser)
    add(
        "--skip-cv",
        action="store_true",
        help="train nothing: measure cost and speed; accuracy "
        "only from folds already finished in WORK_DIR/cv",
    )
    add(
        "--threads",
        type=int,
        default=2,
        help="torch threads while timing speeds (not training) (default: %(default)s)",
    )
    add("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    add("--speed-steps", type=int, default=5, help="steps per timing (default: %(default)s)")
    add(
        "--speed-repeats",
        type=int,
        default=3,
        help="timings per speed; the median is reported (default: %(default)s)",
    )
    add_store_arguments(parser, unit="folds")
    parser.set_defaults(results_dir=ROOT / "results")
    args = parser.parse_args(argv)
    check_store_arguments(parser, args)
    return args  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    speed = SpeedSettings(args.threads, args.warmup, args.speed_steps, args.speed_repeats)
    bench = BackboneBenchmark(
        configs=args.configs,
        work_dir=args.work_dir,
        folds=args.folds,
        seed=args.seed,
        repeats=args.repeats,
        jobs=args.jobs,
        keep_checkpoints=args.keep_checkpoints,
        skip_cv=args.skip_cv,
        speed=speed,
        cfg_options=args.cfg_options,
        **store_options(args),
        root=ROOT,
    )
    return benchmark_backbones(bench)


if __name__ == "__main__":
    sys.exit(main())
