"""The main job on synthetic infants: data, preprocessing models, cache, classifier, metrics.

The ``demo`` experiment of tools/run_benchmark.py (:mod:`gm_plugins.apis.experiments`). Every
stage runs the command a user would run by hand (printed before it runs), and a second run
reuses the stages that finished (delete ``work_dirs/demo/stages/<stage>.done`` to redo one).
Run it with ``make demo``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.apis.experiments import Options, run_experiment

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", default="work_dirs/demo", type=Path)
    parser.add_argument("--workers", type=int, default=2, help="parallel processes for data")
    args = parser.parse_args(argv)
    return run_experiment("demo", ROOT, Options(work_dir=args.work_dir, workers=args.workers))


if __name__ == "__main__":
    sys.exit(main())
