"""Stratified k-fold cross-validation by infant for any set of configs, with a Table-1 report.

Folds are made once per repeat from the first config's subjects.csv and saved in the work dir;
every config trains and tests on exactly those splits (fold f tests, fold f+1 validates, the
rest train). Each fold's config is written next to its work dir and runs
``tools/train.py --test-after`` (train, then test the checkpoint chosen on the validation fold)
in its own process, ending by writing ``result.json``; a rerun skips finished folds and resumes
an interrupted one from its last checkpoint, so a killed run picks up where it stopped and
reports exactly what an uninterrupted run reports (:mod:`gm_plugins.experiments.cross_validation`).

Examples::

    python tools/cross_validate.py configs/gm/two-stream_*_demo_gm-synthetic.py \\
        configs/baselines/*_demo_gm-synthetic.py --folds 5 --seed 0 \\
        --work-dir work_dirs/table1 --jobs 2
    python tools/cross_validate.py CONFIG ... --work-dir W --report-only   # rebuild the report
    python tools/cross_validate.py CONFIG --work-dir W --launcher pytorch --gpus 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.experiments.cross_validation import (
    CrossValidation,
    add_fold_arguments,
    cross_validate,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("configs", nargs="+", help="classifier configs to compare (reported by file name)")
    add("--work-dir", required=True, type=Path, help="folds, per-fold runs and the report")
    add_fold_arguments(parser)
    add(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch': run each fold on --gpus processes with torch.distributed.run",
    )
    add(
        "--gpus",
        type=int,
        default=1,
        help="processes per fold with --launcher pytorch (GPUs; CPU processes without CUDA)",
    )
    add("--report-only", action="store_true", help="only rebuild the report from finished folds")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = {key: value for key, value in vars(args).items() if key != "report_only"}
    job = CrossValidation(**options)
    return cross_validate(job, report_only=args.report_only)


if __name__ == "__main__":
    sys.exit(main())
