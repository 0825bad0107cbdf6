"""The synthetic benchmark's statistics and report: mean ± sd over seeds, bootstrap intervals
over test infants, paired comparisons with the reference method, tables and figures (see
:mod:`gm_plugins.experiments.benchmark`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gm_plugins.experiments.benchmark_runs import Run, read_record


def load_predictions(runs: Sequence[Run]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-infant test decisions of runs on the same test infants.

    Returns:
        subject ids (N,), labels (N,), predictions (S, N) in the order of ``runs``.
    """
    ids: list[str] | None = None
    labels, predictions = None, []
    for run in runs:
        subjects = json.loads(run.predictions.read_text())["subjects"]
        subjects = sorted(subjects, key=lambda s: s["subject_id"])
        these = [s["subject_id"] for s in subjects]
        if ids is None:
            ids, labels = these, np.array([s["label"] for s in subjects])
        elif these != ids:
            raise ValueError(f"{run.predictions} scores other infants than {runs[0].predictions}")
        predictions.append([s["predicted"] for s in subjects])
    return ids or [], np.asarray(labels), np.asarray(predictions)


def _ci(low: float, high: float) -> str:
    return f"{low:.3f}-{high:.3f}"


def _mean_sd(mean: float, sd: float) -> str:
    return f"{mean:.3f}" if np.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def summarise(rows: Mapping[str, Sequence[Run]], reference: str, resamples: int) -> dict[str, dict]:
    """Bootstrap figures of each row's runs and their paired comparison with ``reference``."""
    from gm_plugins.evaluation.statistics import infant_bootstrap, mcnemar_exact, paired_bootstrap

    loaded = {key: load_predictions(runs) for key, runs in rows.items()}
    first = reference if reference in loaded else next(iter(loaded))  # a partial report: any
    ids = loaded[first][0]
    summary = {}
    for key, (these, labels, predictions) in loaded.items():
        if these != ids:
            raise ValueError(f"{key} was tested on other infants than {first}")
        figures = infant_bootstrap(labels, predictions, resamples=resamples)
        records = [read_record(run) for run in rows[key]]
        figures["window_accuracy"] = float(np.mean([r["test"]["window/accuracy"] for r in records]))
        figures["seconds"] = float(sum(r["seconds"] for r in records))
        figures["val_accuracy"] = float(np.mean([r["val"]["accuracy"] for r in records]))
        if key != reference and reference in loaded:
            reference_predictions = loaded[reference][2]
            figures["paired"] = paired_bootstrap(
                labels, predictions, reference_predictions, resamples=resamples
            )
            figures["mcnemar"] = mcnemar_exact(labels, predictions[0], reference_predictions[0])
        summary[key] = figures
    return summary


def results_table(summary: Mapping[str, dict], titles: Mapping[str, str], reference: str) -> str:
    """Markdown: one row per method, test infants."""
    lines = [
        "| Method | seeds | infant accuracy (mean ± sd) | 95 % CI | MCC (mean ± sd) | 95 % CI "
        f"| accuracy minus {reference} (95 % CI) | p (paired bootstrap) | p (McNemar, seed 0) "
        "| window accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, f in sorted(summary.items(), key=lambda item: -item[1]["accuracy"]):
        paired, mcnemar = f.get("paired"), f.get("mcnemar")
        comparison = (
            f"{paired['difference']:+.3f} ({paired['ci_low']:+.3f} to {paired['ci_high']:+.3f})"
            if paired
            else ("reference" if key == reference else "n/a")
        )
        lines.append(
            f"| {titles[key]} | {f['num_seeds']} | {_mean_sd(f['accuracy'], f['accuracy_sd'])} "
            f"| {_ci(f['accuracy_ci_low'], f['accuracy_ci_high'])} "
            f"| {_mean_sd(f['mcc'], f['mcc_sd'])} | {_ci(f['mcc_ci_low'], f['mcc_ci_high'])} "
            f"| {comparison} | {_p(paired['p_value']) if paired else ''} "
            f"| {_p(mcnemar['p_value']) if mcnemar else ''} | {f['window_accuracy']:.3f} |"
        )
    return "\n".join(lines)


def ordering_statement(
    summary: Mapping[str, dict], reference: str, others: Sequence[str], titles: Mapping[str, str]
) -> str:
    """Whether the reference is above each of ``others``, in words, with the paired p."""
    if reference not in summary:
        return f"No ordering statement: {titles[reference]} has no finished runs yet."
    parts = []
    for key in others:
        if key not in summary:
            continue
        paired = summary[key]["paired"]
        above = paired["difference"] < 0  # other minus reference
        significant = paired["p_value"] < 0.05
        verdict = ("above" if above else "not above") + (
            " (significant at 5 %)" if significant else " (not significant at 5 %)"
        )
        parts.append(
            f"- {titles[reference]} is {verdict} {titles[key]}: difference "
            f"{-paired['difference']:+.3f}, p = {_p(paired['p_value'])}"
        )
    holds = all(summary[k]["paired"]["difference"] < 0 for k in others if k in summary)
    head = (
        "The paper's ordering holds here"
        if holds
        else "The paper's ordering does not hold here in full"
    )
    return head + " (point estimates; see each p):\n" + "\n".join(parts)


def variant_table(
    study: Mapping[str, dict[str, dict]],
    chosen: Mapping[str, str],
    test: Mapping[str, dict[str, float]],
    titles: Mapping[str, str],
) -> str:
    """Markdown: validation figures of every RGB variant (the choice), and its seed-0 test
    accuracy for information only."""
    lines = [
        "| Method | RGB stream | val accuracy | val MCC | val cross-entropy | chosen "
        "| test accuracy (seed 0, not used to choose) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, figures in study.items():
        for variant, f in figures.items():
            mark = "yes" if chosen[key] == variant else ""
            lines.append(
                f"| {titles[key]} | {variant} | {f['accuracy']:.3f} | {f['mcc']:.3f} "
                f"| {f['cross_entropy']:.3f} | {mark} | {test[key][variant]:.3f} |"
            )
    return "\n".join(lines)


def write_figure(
    path: Path, summary: Mapping[str, dict], titles: Mapping[str, str], reference: str, title: str
) -> Path:
    from gm_plugins.evaluation.statistics import plot_bars_with_ci

    keys = sorted(summary, key=lambda k: -summary[k]["accuracy"])
    return plot_bars_with_ci(
        path,
        [titles[k] for k in keys],
        [summary[k]["accuracy"] for k in keys],
        [summary[k]["accuracy_ci_low"] for k in keys],
        [summary[k]["accuracy_ci_high"] for k in keys],
        ylabel="infant accuracy on the test infants (95 % bootstrap CI)",
        title=title,
        chance=1 / 3,
        highlight=keys.index(reference) if reference in keys else None,
    )
