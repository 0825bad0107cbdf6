"""Measure the model zoo on held-out synthetic infants and compare with the recorded metrics.

Generates the held-out dataset first if it is missing (data/gm_zoo_eval: 24 infants of seed 7,
which no model trained on; about 2 minutes on 2 cores), then scores every model of
model-index.yml (or those named with --models) by its task and prints, per recorded metric, the
recorded and the measured value. Exit code 1 when a metric falls below its record by more than
--tolerance.

Examples::

    python tools/analysis_tools/evaluate_zoo.py
    python tools/analysis_tools/evaluate_zoo.py --models NAME [NAME ...] --tolerance 0.05
    python tools/analysis_tools/evaluate_zoo.py --write   # also results/zoo/<model>.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.experiments.zoo_evaluation import (
    EVALUATION_ROOT,
    ensure_evaluation_dataset,
    evaluate_zoo,
)
from gm_plugins.utils.zoo import ZooError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=Path(EVALUATION_ROOT))
    parser.add_argument("--models", nargs="+", help="zoo model names (default: all)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="below the record allowed")
    parser.add_argument("--write", action="store_true", help="write results/zoo/<model>.json")
    parser.add_argument("--workers", type=int, default=2, help="processes generating the data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.data_root == Path(EVALUATION_ROOT):
        ensure_evaluation_dataset(args.data_root, args.workers)
    elif not (args.data_root / "subjects.csv").is_file():
        print(f"error: {args.data_root}/subjects.csv does not exist", file=sys.stderr)
        return 2
    try:
        lines, ok = evaluate_zoo(args.data_root, args.models, ".", args.tolerance, args.write)
    except (ZooError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n" + "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
