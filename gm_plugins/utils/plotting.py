"""Figures for people: confusion matrices and training curves."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gm_plugins.utils.io import atomic_path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display here; write files only
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Lay out ``figure``, write it to ``path`` (folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=path.suffix.lstrip(".") or "png")
    pyplot().close(figure)
    return path


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | os.PathLike, title: str
) -> Path:
    """Write a confusion matrix (rows: true class, columns: predicted) as a PNG."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    display = ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(classes))
    display.plot(ax=axes, cmap="Blues", colorbar=False, values_format="d")
    axes.set_title(title)
    return save_figure(figure, path)


def read_scalar_log(work_dir: str | os.PathLike) -> list[dict]:
    """Entries of the newest ``vis_data/scalars.json`` that mmengine wrote under ``work_dir``."""
    logs = sorted(Path(work_dir).glob("*/vis_data/scalars.json"), key=lambda p: p.stat().st_mtime)
    if not logs:
        raise FileNotFoundError(f"No */vis_data/scalars.json under {work_dir}; train first.")
    return [json.loads(line) for line in logs[-1].read_text().splitlines() if line.strip()]


def plot_training_curve(
    work_dir: str | os.PathLike, path: str | os.PathLike, metric: str = "subject/accuracy"
) -> Path:
    """Training loss per iteration and a validation metric per epoch, as a PNG."""
    entries = read_scalar_log(work_dir)
    train = [e for e in entries if "loss" in e and "step" in e and metric not in e]
    val = [e for e in entries if metric in e]
    plt = pyplot()
    figure, loss_axes = plt.subplots(figsize=(6, 3.6), dpi=120)
    loss_axes.plot([e["step"] for e in train], [e["loss"] for e in train], color="tab:blue")
    loss_axes.set_xlabel("iteration")
    loss_axes.set_ylabel("training loss", color="tab:blue")
    if val:
        metric_axes = loss_axes.twinx()
        iters_per_epoch = _iters_per_epoch(train)
        x = [e["step"] * iters_per_epoch for e in val]
        metric_axes.plot(x, [e[metric] for e in val], "o-", color="tab:orange")
        metric_axes.set_ylabel(f"validation {metric}", color="tab:orange")
        metric_axes.set_ylim(0, 1.02)
    loss_axes.set_title("training curve")
    return save_figure(figure, path)


def _iters_per_epoch(train: list[dict]) -> float:
    """Iterations per epoch from log entries that carry both ``epoch`` and ``step``."""
    with_epoch = [e for e in train if e.get("epoch")]
    if not with_epoch:
        return 1.0
    last = with_epoch[-1]
    return last["step"] / max(last["epoch"], 1)


def plot_reliability_diagram(
    tables: dict[str, list[dict]],
    path: str | os.PathLike,
    title: str = "reliability diagram",
) -> Path:
    """Accuracy per confidence bin against the diagonal, one bar series per reliability table.

    ``tables`` maps a name (``'before'``, ``'after'``) to the rows of
    :func:`gm_plugins.evaluation.calibration.reliability_table`; the legend gives each table's
    expected calibration error. Empty bins draw no bar. Written atomically; returns ``path``.
    """
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(4.6, 4.2), dpi=120)
    axes.plot([0, 1], [0, 1], "--", color="0.5", linewidth=1, label="perfect calibration")
    share = 1.0 / max(len(tables), 1)
    for series, (name, table) in enumerate(tables.items()):
        filled = [row for row in table if row["count"]]
        widths = [(row["upper"] - row["lower"]) * share for row in filled]
        lefts = [row["lower"] + series * w for row, w in zip(filled, widths, strict=True)]
        axes.bar(
            lefts,
            [row["accuracy"] for row in filled],
            width=widths,
            align="edge",
            alpha=0.7,
            edgecolor="white",
            label=f"{name} (ECE {_table_ece(table):.3f})",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize="small")
    return save_figure(figure, path)


def _table_ece(table: Sequence[dict]) -> float:
    """Expected calibration error of a reliability table (count-weighted |accuracy - conf|)."""
    total = sum(row["count"] for row in table)
    if not total:
        return float("nan")
    return sum(
        row["count"] / total * abs(row["accuracy"] - row["mean_confidence"])
        for row in table
        if row["count"]
    )


def plot_coverage_accuracy(
    curve: Sequence[tuple[float, float, float]],
    path: str | os.PathLike,
    title: str = "accuracy against coverage",
) -> Path:
    """Accuracy of the decided infants against coverage, from (threshold, coverage, accuracy).

    ``curve`` is :func:`gm_plugins.evaluation.calibration.risk_coverage_curve`'s output.
    Written atomically; returns ``path``.
    """
    coverage = [point[1] for point in curve]
    accuracy = [point[2] for point in curve]
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(4.6, 3.6), dpi=120)
    axes.plot(coverage, accuracy, "o-", markersize=3, color="tab:blue")
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("coverage (share of infants decided)")
    axes.set_ylabel("accuracy on decided infants")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return save_figure(figure, path)
