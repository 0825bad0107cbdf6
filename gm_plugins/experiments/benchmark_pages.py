"""The benchmark pages of the documentation, rebuilt from the results store alone.

Table 1, the confounding experiment and the backbone leaderboard each have a page under
``docs/en/benchmarks/results/``: the report their tool's ``--report`` writes from the committed
records (no training), with its figure (bars with 95 % CI whiskers). Each page names the records
it was built from (their count and a digest of their ``record_sha256``), so a page that no longer
matches ``results/`` is found without rebuilding it (:func:`stale_pages`, checked by the tests).

Run by ``tools/analysis_tools/publish_benchmarks.py`` (``make benchmark-pages``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gm_plugins.experiments import results_store as rs
from gm_plugins.utils.io import write_text_atomic
from gm_plugins.utils.processes import python_command, run_command

#: Where the pages go, relative to the repository.
PAGES_DIR = Path("docs/en/benchmarks/results")
_BUILT = re.compile(r"from the (\d+) records? in `results/([\w-]+)/` \(digest `([0-9a-f]{16})`\)")


@dataclass(frozen=True)
class Page:
    """One experiment's page: its store folder, the command that reports it (``--work-dir`` and
    ``--results-dir`` added), and where that command writes its report and figure."""

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
        None,  # drawn here from leaderboard.csv: bars with CI whiskers
    ),
)


def records_digest(store: rs.ResultsStore, experiment: str) -> tuple[int, str]:
    """How many records ``experiment`` has in ``store`` and a digest of them (16 hex digits of
    the sha256 of their sorted run names and ``record_sha256``)."""
    records = store.records(experiment) if (store.root / experiment).is_dir() else []
    lines = sorted(f"{r['run']} {r['record_sha256']}" for r in records)
    return len(records), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def built_from(page_text: str) -> tuple[int, str, str] | None:
    """(record count, experiment, digest) a published page says it was built from."""
    found = _BUILT.search(page_text)
    return (int(found[1]), found[2], found[3]) if found else None


def stale_pages(store: rs.ResultsStore, pages_dir: str | os.PathLike) -> list[str]:
    """The experiments whose records differ from what their published page was built from (an
    experiment with records but no page counts as stale)."""
    stale = []
    for page in PAGES:
        count, digest = records_digest(store, page.experiment)
        path = Path(pages_dir) / f"{page.experiment}.md"
        if not path.is_file():
            if count:
                stale.append(page.experiment)
            continue
        if built_from(path.read_text()) != (count, page.experiment, digest):
            stale.append(page.experiment)
    return stale


def _shown(path: str | os.PathLike, root: Path) -> str:
    """``path`` relative to ``root`` where it lies inside it (what the pages show), else whole."""
    resolved = Path(path).resolve()
    return (
        str(resolved.relative_to(root.resolve()))
        if resolved.is_relative_to(root.resolve())
        else str(resolved)
    )


def _header(page: Page, count: int, digest: str) -> str:
    command = " ".join(["python", *page.command])
    return (
        f"*Built by `python tools/analysis_tools/publish_benchmarks.py` on "
        f"{datetime.now(UTC).date().isoformat()} from the {count} records in "
        f"`results/{page.experiment}/` (digest `{digest}`), by `{command}` alone: no run was "
        "trained to build it. Rebuild it after adding records; do not edit it by hand.*"
    )


def _short(config: str) -> str:
    """A leaderboard config's name without what every default config shares."""
    return config.removeprefix("two-stream_").removesuffix("-concat-fusion_demo_gm-synthetic")


def _leaderboard_figure(csv: Path, path: Path) -> Path | None:
    """Pooled infant accuracy of every config with folds, bars with 95 % CI whiskers."""
    from gm_plugins.evaluation.statistics import plot_bars_with_ci

    frame = pd.read_csv(csv)
    frame = frame[frame["accuracy_pooled"].notna()]
    if frame.empty:
        return None
    frame = frame.sort_values("accuracy_pooled", ascending=False)
    names = [
        f"{_short(config)} ({folds} folds)"
        for config, folds in zip(frame["config"], frame["runs"].astype(int), strict=True)
    ]
    return plot_bars_with_ci(
        path,
        names,
        frame["accuracy_pooled"].tolist(),
        frame["accuracy_ci_low"].tolist(),
        frame["accuracy_ci_high"].tolist(),
        ylabel="infant accuracy, recorded folds pooled",
        title="Backbone leaderboard (recorded folds in brackets)",
        chance=1 / 3,
    )


def publish(
    root: str | os.PathLike,
    results_dir: str | os.PathLike,
    pages_dir: str | os.PathLike,
    experiments: Sequence[str] | None = None,
) -> list[Path]:
    """Rebuild the pages of ``experiments`` (default: every one with records) from the store
    at ``results_dir``; returns the pages written. A report that fails raises
    :class:`~gm_plugins.utils.processes.CommandError` and leaves the published page as it was."""
    root, pages_dir = Path(root), Path(pages_dir)
    store = rs.ResultsStore(results_dir)
    written = []
    for page in PAGES:
        if experiments is not None and page.experiment not in experiments:
            continue
        count, digest = records_digest(store, page.experiment)
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
            figure = pages_dir / figure_name
            if page.figure is not None:
                shutil.copyfile(work / page.figure, figure)
                report = report.replace(f"]({Path(page.figure).name})", f"]({figure_name})")
            elif _leaderboard_figure(work / "leaderboard.csv", figure) is not None:
                report += f"\n![{page.title}]({figure_name})\n"
        title, _, body = report.partition("\n")
        text = f"{title}\n\n{_header(page, count, digest)}\n{body}"
        written.append(write_text_atomic(pages_dir / f"{page.experiment}.md", text))
        print(f"{page.experiment}: {written[-1]} from {count} records")
    return written
