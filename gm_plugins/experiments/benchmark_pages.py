"""The benchmark pages of the documentation, and whether they still match the results store.

Table 1, the confounding experiment and the backbone leaderboard each have a page under
``docs/en/benchmarks/results/``: the report their tool's ``--report`` writes from the committed
records (no training), with its figure (bars with 95 % CI whiskers), published by
``tools/analysis_tools/publish_benchmarks.py`` (``make benchmark-pages``). Each page names the
records it was built from (their count and a digest of their ``record_sha256``), so a page that no
longer matches ``results/`` is found without rebuilding it (:func:`stale_pages`, checked by the
tests).
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gm_plugins.experiments import results_store as rs

#: Where the pages go, relative to the repository.
PAGES_DIR = Path("docs/en/benchmarks/results")
#: The experiments with a page (each a folder of the results store).
EXPERIMENTS = ("table1", "confounding", "backbones")
_BUILT = re.compile(r"from the (\d+) records? in `results/([\w-]+)/` \(digest `([0-9a-f]{16})`\)")


def records_digest(store: rs.ResultsStore, experiment: str) -> tuple[int, str]:
    """How many records ``experiment`` has in ``store`` and a digest of them (16 hex digits of
    the sha256 of their sorted run names and ``record_sha256``, then the verification log's
    entries)."""
    records = store.records(experiment) if (store.root / experiment).is_dir() else []
    lines = sorted(f"{r['run']} {r['record_sha256']}" for r in records)
    lines += [f"verified {e['entry_sha256']}" for e in store.verifications(experiment)]
    return len(records), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def built_from(page_text: str) -> tuple[int, str, str] | None:
    """(record count, experiment, digest) a published page says it was built from."""
    found = _BUILT.search(page_text)
    return (int(found[1]), found[2], found[3]) if found else None


def stale_pages(
    store: rs.ResultsStore,
    pages_dir: str | os.PathLike,
    experiments: tuple[str, ...] = EXPERIMENTS,
) -> list[str]:
    """The experiments whose records differ from what their published page was built from (an
    experiment with records but no page counts as stale)."""
    stale = []
    for experiment in experiments:
        count, digest = records_digest(store, experiment)
        path = Path(pages_dir) / f"{experiment}.md"
        if not path.is_file():
            if count:
                stale.append(experiment)
            continue
        if built_from(path.read_text()) != (count, experiment, digest):
            stale.append(experiment)
    return stale


def page_text(report: str, experiment: str, count: int, digest: str, command: str) -> str:
    """A published page: the report's title, then what it was built from, then the report."""
    title, _, body = report.partition("\n")
    built = (
        f"*Built by `python tools/analysis_tools/publish_benchmarks.py` on "
        f"{datetime.now(UTC).date().isoformat()} from the {count} records in "
        f"`results/{experiment}/` (digest `{digest}`), by `{command}` alone: no run was trained "
        "to build it. Rebuild it after adding records; do not edit it by hand.*"
    )
    return f"{title}\n\n{built}\n{body}"


def short_config_name(config: str) -> str:
    """A leaderboard config's name without what every default config shares."""
    return config.removeprefix("two-stream_").removesuffix("-concat-fusion_demo_gm-synthetic")


def leaderboard_figure(csv: str | os.PathLike, path: str | os.PathLike) -> Path | None:
    """Pooled infant accuracy of every config of ``leaderboard.csv`` with folds, as bars with
    95 % CI whiskers; None (and no file) when no config has folds."""
    from gm_plugins.evaluation.statistics import plot_bars_with_ci

    frame = pd.read_csv(csv)
    frame = frame[frame["accuracy_pooled"].notna()]
    if frame.empty:
        Path(path).unlink(missing_ok=True)
        return None
    frame = frame.sort_values("accuracy_pooled", ascending=False)
    names = [
        f"{short_config_name(config)} ({folds} folds)"
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
