"""Rebuild the benchmark pages (docs/en/benchmarks/results/) from the results store alone.

Runs the ``--report`` of Table 1, the confounding experiment and the backbone leaderboard on the
committed records (no training) and writes each report with its figure as a page that names
the records it was built from (:mod:`gm_plugins.experiments.benchmark_pages`). The backbone
leaderboard's report needs the demo's infants (data/gm_synthetic; ``make demo`` makes them).

Examples::

    python tools/analysis_tools/publish_benchmarks.py                  # every experiment
    python tools/analysis_tools/publish_benchmarks.py table1 backbones
    python tools/analysis_tools/publish_benchmarks.py --check          # exit 1 when stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gm_plugins.experiments.benchmark_pages import PAGES, PAGES_DIR, publish, stale_pages
from gm_plugins.utils.processes import CommandError

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    known = [page.experiment for page in PAGES]
    parser.add_argument("experiments", nargs="*", help=f"any of {', '.join(known)} (default: all)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    parser.add_argument("--pages-dir", type=Path, default=ROOT / PAGES_DIR)
    parser.add_argument(
        "--check", action="store_true", help="only say which pages no longer match the records"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.experiments) - set(known))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    from gm_plugins.experiments import results_store as rs

    args = parse_args(argv)
    if args.check:
        stale = stale_pages(rs.ResultsStore(args.results_dir), args.pages_dir)
        for name in stale:
            print(f"{name}: its page does not match results/{name}/; run this tool again")
        return 1 if stale else 0
    try:
        publish(ROOT, args.results_dir, args.pages_dir, args.experiments or None)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
