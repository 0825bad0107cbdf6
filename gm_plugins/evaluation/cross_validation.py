"""Subject-level k-fold cross-validation: shared folds, per-fold results, Table-1 reports.

:mod:`gm_plugins.experiments.cross_validation` runs the folds (tools/cross_validate.py parses its
arguments); this module holds what does not need a process of its own: the fold files every
config shares, the config overrides that select a fold, the per-fold result files that make a
run resumable, and the report (Markdown and CSV tables through pandas, figures).

Work directory layout::

    W/folds/repeat<r>.json                  subject -> fold, one file per repeat (seed + r)
    W/<config>/repeat<r>_fold<f>.py         the config of that fold (overrides applied)
    W/<config>/repeat<r>_fold<f>/           tools/train.py work dir of that fold
    W/<config>/repeat<r>_fold<f>/result.json  written last: the fold counts as done
    W/<config>/confusion_matrix.png         infant-level, summed over folds and repeats
    W/report.md, W/report.csv, W/comparison.png, W/folds.json (every fold's metrics)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gm_plugins.datasets.folds import save_folds, stratified_subject_folds
from gm_plugins.datasets.subjects import GM_CLASSES, read_subjects
from gm_plugins.utils.io import write_json_atomic, write_text_atomic

#: (metric key suffix, column title) of the report, in the paper's Table 1 order first.
REPORT_METRICS = (
    ("accuracy", "Accuracy"),
    ("mcc", "MCC"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1"),
    ("kappa", "Kappa"),
)
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")
SPLIT_OF_LOADER = dict(zip(LOADERS, ("train", "val", "test"), strict=True))
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class FoldRun:
    """One (config, repeat, fold) of a cross-validation: train on the rest, test on ``fold``.

    The fold after the test fold (cyclically) validates: it picks the checkpoint and stops
    training early, and never tests.
    """

    config: str
    name: str
    repeat: int
    fold: int
    num_folds: int

    @property
    def val_fold(self) -> int:
        return (self.fold + 1) % self.num_folds

    @property
    def label(self) -> str:
        return f"repeat{self.repeat}_fold{self.fold}"

    def directory(self, work_dir: str | os.PathLike) -> Path:
        return Path(work_dir) / self.name / self.label

    def result_file(self, work_dir: str | os.PathLike) -> Path:
        return self.directory(work_dir) / RESULT_FILE

    def config_file(self, work_dir: str | os.PathLike) -> Path:
        """The fold's own config, next to (not inside) its work dir: the runner dumps its
        config into the work dir under the same file name."""
        return self.directory(work_dir).with_suffix(".py")


def config_name(config_path: str | os.PathLike) -> str:
    """The name a config is reported under: its file name without ``.py``."""
    return Path(config_path).name.removesuffix(".py")


def plan_runs(configs: Sequence[str], num_folds: int, repeats: int) -> list[FoldRun]:
    """Every (config, repeat, fold), config by config; raises on two configs with one name."""
    names = [config_name(c) for c in configs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(
            f"configs {duplicated} appear twice (by file name); their results would share a "
            "folder: give each config a distinct file name"
        )
    return [
        FoldRun(str(config), name, repeat, fold, num_folds)
        for config, name in zip(configs, names, strict=True)
        for repeat in range(repeats)
        for fold in range(num_folds)
    ]


def _fold_dataset(cfg: Mapping, loader: str) -> tuple[str, Mapping | None]:
    """(dotted config path, dataset config) of a dataloader's subjects.csv-reading dataset.

    Dataset wrappers (``dataset=dict(type='RepeatDataset', dataset=...)``) are unwrapped; the
    dataset is None when the loader is missing or reads no ``ann_file``.
    """
    path = f"{loader}.dataset"
    dataset = (cfg.get(loader) or {}).get("dataset")
    while dataset is not None and "ann_file" not in dataset and "dataset" in dataset:
        dataset, path = dataset["dataset"], path + ".dataset"
    if dataset is None or "ann_file" not in dataset:
        return path, None
    return path, dataset


def subject_table(cfg: Mapping) -> tuple[Path, list[str], list[str]]:
    """(subjects.csv path, subject ids, labels) of the config's training dataset.

    The table is checked as the dataset checks it (:func:`~gm_plugins.datasets.subjects.
    read_subjects`); videos need not be present, folds only need ids and labels.
    """
    _, dataset = _fold_dataset(cfg, "train_dataloader")
    if dataset is None:
        raise ValueError(
            "cross-validation needs a train_dataloader whose dataset reads a subjects.csv "
            "(ann_file), e.g. GMDataset; this config has none"
        )
    table = Path(dataset.get("data_root") or "") / dataset["ann_file"]
    classes = (dataset.get("metainfo") or {}).get("classes", GM_CLASSES)
    rows = read_subjects(
        table, dataset.get("data_root") or None, classes=tuple(classes), check_videos=False
    )
    return table, [r["subject_id"] for r in rows], [r["label"] for r in rows]


def prepare_folds(
    work_dir: str | os.PathLike,
    subject_ids: Sequence[str],
    labels: Sequence[str],
    num_folds: int,
    seed: int,
    repeat: int,
) -> Path:
    """The fold file of ``repeat`` (seed ``seed + repeat``): made once, then only checked.

    Raises ValueError when the work dir holds folds of other subjects, fold count or seed,
    so two comparisons never mix splits.
    """
    path = Path(work_dir) / "folds" / f"repeat{repeat}.json"
    fold_seed = seed + repeat
    if path.is_file():
        stored = json.loads(path.read_text())
        folds = stored["folds"]
        problems = []
        if stored.get("seed") != fold_seed:
            problems.append(f"seed {stored.get('seed')} (asked: {fold_seed})")
        if max(folds.values()) + 1 != num_folds:
            problems.append(f"{max(folds.values()) + 1} folds (asked: {num_folds})")
        if set(folds) != set(subject_ids):
            problems.append("other subjects")
        if problems:
            raise ValueError(
                f"{path} holds folds with {', '.join(problems)}: use the original --folds/--seed "
                "and data to resume it, or another --work-dir"
            )
        return path
    folds = stratified_subject_folds(subject_ids, labels, num_folds, fold_seed)
    save_folds(path, folds, fold_seed)
    return path


def fold_overrides(cfg: Mapping, folds_file: str | os.PathLike, run: FoldRun) -> dict[str, object]:
    """``--cfg-options`` that make a config train, validate and test one fold.

    Only dataloaders reading the training dataset's subjects.csv are split; a test set of
    other infants (e.g. an independent recording site) stays whole, so every fold's model is
    tested on it.
    """
    _, train = _fold_dataset(cfg, "train_dataloader")
    source = (train.get("data_root"), train["ann_file"])
    overrides: dict[str, object] = {}
    for loader in LOADERS:
        prefix, dataset = _fold_dataset(cfg, loader)
        if dataset is None or (dataset.get("data_root"), dataset.get("ann_file")) != source:
            continue
        overrides.update(
            {
                f"{prefix}.folds_file": str(folds_file),
                f"{prefix}.num_folds": run.num_folds,
                f"{prefix}.test_fold": run.fold,
                f"{prefix}.val_fold": run.val_fold,
                f"{prefix}.split": SPLIT_OF_LOADER[loader],
            }
        )
    return overrides


def read_result(work_dir: str | os.PathLike, run: FoldRun) -> dict | None:
    """The finished fold's result (metrics and provenance), or None if it has not finished."""
    path = run.result_file(work_dir)
    return json.loads(path.read_text()) if path.is_file() else None


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value). NaNs are ignored."""
    array = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def summarise(results: Sequence[Mapping], level: str = "subject") -> dict:
    """Mean and sd of each report metric over folds, plus the summed confusion matrix.

    Args:
        results: per-fold result dicts (``metrics`` from SubjectMetric).
        level: 'subject' (one decision per infant, the paper's unit) or 'window'.
    """
    summary: dict = dict(num_runs=len(results))
    for key, _ in REPORT_METRICS:
        values = [r["metrics"].get(f"{level}/{key}", math.nan) for r in results]
        summary[key] = mean_sd(values)
    matrices = [r["metrics"].get(f"{level}/confusion_matrix") for r in results]
    matrices = [np.asarray(m) for m in matrices if m is not None]
    summary["confusion_matrix"] = np.sum(matrices, axis=0).tolist() if matrices else None
    window = [r["metrics"].get("window/accuracy", math.nan) for r in results]
    summary["window_accuracy"] = mean_sd(window)
    return summary


def format_mean_sd(pair: tuple[float, float]) -> str:
    """``mean ± sd`` with three decimals, ``n/a`` when there is no value."""
    mean, sd = pair
    return "n/a" if math.isnan(mean) else f"{mean:.3f} ± {sd:.3f}"


def markdown_table(summaries: Mapping[str, dict]) -> str:
    """The paper's Table 1 layout: one row per config, mean ± sd per metric (infant level)."""
    rows = [
        {
            "Method": name,
            **{title: format_mean_sd(summary[key]) for key, title in REPORT_METRICS},
            "Window accuracy": format_mean_sd(summary["window_accuracy"]),
            "Runs": summary["num_runs"],
        }
        for name, summary in summaries.items()
    ]
    return pd.DataFrame.from_records(rows).to_markdown(index=False) + "\n"


def summary_frame(summaries: Mapping[str, dict]) -> pd.DataFrame:
    """One row per config: ``method``, ``runs``, then ``<metric>_mean`` and ``<metric>_sd``."""
    keys = [key for key, _ in REPORT_METRICS] + ["window_accuracy"]
    rows = []
    for name, summary in summaries.items():
        row = {"method": name, "runs": summary["num_runs"]}
        for key in keys:
            row[f"{key}_mean"], row[f"{key}_sd"] = summary[key]
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def write_csv(path: str | os.PathLike, summaries: Mapping[str, dict]) -> Path:
    """:func:`summary_frame` as CSV (four decimals), written atomically."""
    frame = summary_frame(summaries)
    return write_text_atomic(path, frame.to_csv(index=False, float_format="%.4f", na_rep="nan"))


def fold_result(run: FoldRun, seed: int, folds_file: Path, metrics: dict, seconds: float) -> dict:
    """What ``result.json`` holds for a finished fold: provenance, then the test metrics.

    ``metrics`` are tools/train.py's ``--test-after`` metrics; their ``checkpoint`` (the tested
    one) moves to the provenance.
    """
    metrics = dict(metrics)
    checkpoint = metrics.pop("checkpoint")
    return dict(
        config=run.config,
        name=run.name,
        repeat=run.repeat,
        fold=run.fold,
        test_fold=run.fold,
        val_fold=run.val_fold,
        seed=seed,
        folds_file=str(folds_file),
        checkpoint=str(checkpoint),
        seconds=round(seconds, 1),
        metrics=metrics,
    )


def write_report(
    work_dir: str | os.PathLike, runs: Sequence[FoldRun], folds: int, repeats: int, seed: int
) -> str:
    """Report of the finished folds (Markdown, CSV, per-fold JSON, figures); returns the table.

    Writes ``report.md``, ``report.csv``, ``folds.json`` (every finished fold's result, by
    config), ``<config>/confusion_matrix.png`` and ``comparison.png`` under ``work_dir``.
    """
    from gm_plugins.utils.plotting import plot_confusion_matrix

    work_dir = Path(work_dir)
    by_config: dict[str, list[dict]] = {}
    for run in runs:
        result = read_result(work_dir, run)
        by_config.setdefault(run.name, [])
        if result is not None:
            by_config[run.name].append(result)
    summaries = {name: summarise(results) for name, results in by_config.items() if results}
    if not summaries:
        return "no finished folds yet\n"
    table = markdown_table(summaries)
    expected = folds * repeats
    missing = {n: expected - len(r) for n, r in by_config.items() if len(r) < expected}
    header = (
        f"# Cross-validation: {folds} folds by infant x {repeats} repeat(s), seed {seed}\n\n"
        "Infant-level metrics, mean ± sample sd over folds; the checkpoint of each fold is "
        "chosen on its validation fold.\n\n"
    )
    note = "".join(f"\n{name}: {n} fold(s) not finished\n" for name, n in missing.items())
    write_text_atomic(work_dir / "report.md", header + table + note)
    write_csv(work_dir / "report.csv", summaries)
    write_json_atomic(work_dir / "folds.json", by_config)
    for name, summary in summaries.items():
        if summary["confusion_matrix"] is not None:
            plot_confusion_matrix(
                summary["confusion_matrix"], GM_CLASSES, work_dir / name / "confusion_matrix.png",
                f"{name[:40]}\ninfants, summed over {summary['num_runs']} folds",
            )  # fmt: skip
    plot_comparison(work_dir / "comparison.png", summaries)
    return table + note


def plot_comparison(
    path: str | os.PathLike,
    summaries: Mapping[str, dict],
    metrics: Sequence[str] = ("accuracy", "mcc"),
    chance: float | None = 1 / 3,
) -> Path:
    """Horizontal bars of mean ± sd per config for ``metrics`` (infant level), as a PNG.

    ``chance`` (the accuracy of guessing among balanced classes) is drawn as a dotted line.
    """
    from gm_plugins.utils.plotting import pyplot, save_figure

    plt = pyplot()
    names = list(summaries)
    height = 0.8 / len(metrics)
    figure, axes = plt.subplots(figsize=(10.5, 0.9 + 0.45 * len(names) * len(metrics)), dpi=120)
    positions = np.arange(len(names))
    for index, metric in enumerate(metrics):
        means = [summaries[n][metric][0] for n in names]
        sds = [summaries[n][metric][1] for n in names]
        title = dict(REPORT_METRICS).get(metric, metric)
        axes.barh(positions + index * height, means, height, xerr=sds, capsize=3, label=title)
    axes.set_yticks(positions + height * (len(metrics) - 1) / 2, names, fontsize=7)
    axes.invert_yaxis()
    lowest = min([0.0] + [summaries[n][m][0] - summaries[n][m][1] for n in names for m in metrics])
    axes.set_xlim(lowest - 0.05, 1.05)
    axes.axvline(0, color="black", linewidth=0.6)
    if "accuracy" in metrics and chance is not None:
        axes.axvline(chance, color="grey", linestyle=":", linewidth=1, label="chance accuracy")
    axes.set_xlabel("infant level, mean ± sd over folds")
    axes.legend(loc="lower right", fontsize=7)
    return save_figure(figure, path)
