"""Rebuild the benchmark pages (docs/en/benchmarks/results/) from the results store alone.

Runs the ``--report`` of Table 1 (tools/run_benchmark.py), the confounding experiment and the
backbone leaderboard (tools/analysis_tools/benchmark_backbones.py) on the committed records (no
training) and writes each report with its figure as a page that names the records it was built
from (:mod:`gm_plugins.experiments.benchmark_pages`). The leaderboard's report needs the demo's
infants (data/gm_synthetic/subjects.csv; ``make demo`` makes them). A report that fails leaves
its published page as it was.

Examples::

    python tools/analysis_tools/publish_benchmarks.py                  # every experiment
    python tools/analysis_tools/publish_benchmarks.py table1 backbones
    python tools/analysis_tools/publish_benchmarks.py --check          # exit 1 when stale
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gm_plugins.experiments import benchmark_pages as bp
from gm_plugins.experiments import results_store as rs
from gm_plugins.utils.io import write_text_atomic
from gm_plugins.utils.processes import CommandError, python_command, run_command

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Page:
    """One experiment's page: its store folder, the command that reports it (``--work-dir`` and
    ``--results-dir`` added), where that command writes its report and its figure (None: the
    leaderboard's bars are drawn here from its CSV)."""

    experiment: str
    title: str
    command: tuple[str, ...]
    report: str
    figure: str | None


PAGES = (
    Page(
        "table1",
        "Table 1",
        ("tools/run_benchmark.py", "table1", "--report"),
        "table1/report.md",
        "table1/table1.png",
    ),
    Page(
        "confounding",
        "Confounding experiment",
        ("tools/run_benchmark.py", "confounding", "--report"),
        "confounding/report.md",
        "confounding/confounding.png",
    ),
    Page(
        "backbones",
        "Backbone leaderboard",
        ("tools/analysis_tools/benchmark_backbones.py", "--report"),
        "leaderboard.md",
        None,
    ),
)


def _shown(path: str | os.PathLike, root: Path) -> str:
    """``path`` relative to ``root`` where it lies inside it (what the pages show), else whole."""
    resolved, root = Path(path).resolve(), root.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


def publish(
    root: Path,
    results_dir: str | os.PathLike,
    pages_dir: str | os.PathLike,
    experiments: Sequence[str] | None = None,
    pages: Sequence[Page] = PAGES,
) -> list[Path]:
    """Rebuild the pages of ``experiments`` (default: every one with records) from the store
    at ``results_dir``; returns the pages written.

    Raises:
        CommandError: a report failed (its published page is left as it was).
    """
    pages_dir = Path(pages_dir)
    store = rs.ResultsStore(results_dir)
    written = []
    for page in pages:
        if experiments is not None and page.experiment not in experiments:
            continue
        count, digest = bp.records_digest(store, page.experiment)
        if not count:
            print(f"{page.experiment}: no records in {store.root}; page left as it is")
            continue
        with tempfile.TemporaryDirectory(prefix=f"gm-pages-{page.experiment}-") as scratch:
            work = Path(scratch)
            command = python_command(
                *page.command, "--work-dir", work, "--results-dir", _shown(results_dir, root)
            )
            run_command(command, f"{page.experiment} report", cwd=root)
            if not (work / page.report).is_file():
                print(f"{page.experiment}: no finished row to report yet; page left as it is")
                continue
            report = (work / page.report).read_text()
            pages_dir.mkdir(parents=True, exist_ok=True)
            figure_name = f"{page.experiment}.png"
            if page.figure is not None:
                shutil.copyfile(work / page.figure, pages_dir / figure_name)
                report = report.replace(f"]({Path(page.figure).name})", f"]({figure_name})")
            elif bp.leaderboard_figure(work / "leaderboard.csv", pages_dir / figure_name):
                report += f"\n![{page.title}]({figure_name})\n"
        shown = " ".join(["python", *page.command])
        text = bp.page_text(report, page.experiment, count, digest, shown)
        written.append(write_text_atomic(pages_dir / f"{page.experiment}.md", text))
        print(f"{page.experiment}: {written[-1]} from {count} records")
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    known = [page.experiment for page in PAGES]
    parser.add_argument("experiments", nargs="*", help=f"any of {', '.join(known)} (default: all)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    parser.add_argument("--pages-dir", type=Path, default=ROOT / bp.PAGES_DIR)
    parser.add_argument(
        "--check", action="store_true", help="only say which pages no longer match the records"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.experiments) - set(known))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check:
        stale = bp.stale_pages(rs.ResultsStore(args.results_dir), args.pages_dir)
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
