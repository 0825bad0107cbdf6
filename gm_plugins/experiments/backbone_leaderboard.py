"""The backbone leaderboard's table and figure: accuracy of the finished folds, one row per
config with its cost and speed, each config paired with a reference config on the same infants,
``leaderboard.md``, ``.csv`` and ``.png`` (:mod:`gm_plugins.experiments.backbone_benchmark`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from mmengine.config import Config

from gm_plugins.datasets.subjects import GM_CLASSES
from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.evaluation.statistics import (  # re-exported: users import them from here too
    accuracy_from_confusion,
    bootstrap_intervals,
    mcc_from_confusion,
    mcnemar_exact,
    paired_bootstrap,
)
from gm_plugins.experiments.backbone_cost import describe_backbones
from gm_plugins.experiments.cross_validation import CrossValidation
from gm_plugins.experiments.results_store import infants_from_predictions
from gm_plugins.utils.io import write_text_atomic

if TYPE_CHECKING:
    from gm_plugins.experiments.backbone_benchmark import BackboneBenchmark


#: Resamples of the bootstrap intervals (percentile method), drawn with a fixed seed.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
#: Leaderboard CSV columns: accuracy and MCC are infant level; ``*_pooled`` over all folds'
#: decisions (the plot's points), ``*_ci_low/high`` the bootstrap interval around them.
COLUMNS = (
    "config", "rgb_backbone", "flow_backbone", "runs",
    "accuracy_mean", "accuracy_sd", "accuracy_pooled", "accuracy_ci_low", "accuracy_ci_high",
    "mcc_mean", "mcc_sd", "mcc_pooled", "mcc_ci_low", "mcc_ci_high",
    "parameters", "flops_per_window", "train_samples_per_s", "inference_windows_per_s",
    "paired_infants", "paired_difference", "paired_ci_low", "paired_ci_high", "paired_p",
    "mcnemar_p",
)  # fmt: skip
#: What a fold's test writes beside its result: each infant's decision and probabilities.
PREDICTIONS_FILE = "test_infants.json"
#: A config's test decisions: {repeat: {subject_id: (label, predicted class)}}.
Decisions = dict[int, dict[str, tuple[int, int]]]


def predictions_file(work_dir: str | os.PathLike, run: cv.FoldRun) -> Path:
    """Where a fold's test writes each infant's decision and probabilities."""
    return run.directory(work_dir) / PREDICTIONS_FILE


# -- accuracy --------------------------------------------------------------------------------


def accuracy_summary(results: Sequence[Mapping]) -> dict[str, float]:
    """Infant accuracy and MCC of finished folds: mean and sd over folds, pooled, 95 % CI.

    NaN everywhere without finished folds; the intervals are NaN without confusion matrices.
    """
    summary = dict(runs=len(results))
    stats = cv.summarise(results) if results else {}
    matrices = {}  # repeat -> summed matrix: one decision per infant and repeat
    for result in results:
        matrix = result["metrics"].get("subject/confusion_matrix")
        if matrix is not None:
            repeat = result.get("repeat", 0)
            matrices[repeat] = matrices.get(repeat, 0) + np.asarray(matrix, np.int64)
    pooled = np.sum(list(matrices.values()), axis=0) if matrices else None
    infants = max((int(m.sum()) for m in matrices.values()), default=0)
    intervals = (
        bootstrap_intervals(pooled, infants, BOOTSTRAP_RESAMPLES, CI_LEVEL, BOOTSTRAP_SEED)
        if infants
        else {}
    )
    for metric, pooled_value in (
        ("accuracy", accuracy_from_confusion),
        ("mcc", mcc_from_confusion),
    ):
        mean, sd = stats.get(metric, (math.nan, math.nan))
        low, high = intervals.get(metric, (math.nan, math.nan))
        summary.update({f"{metric}_mean": mean, f"{metric}_sd": sd})
        summary[f"{metric}_pooled"] = float(pooled_value(pooled)) if infants else math.nan
        summary.update({f"{metric}_ci_low": low, f"{metric}_ci_high": high})
    return summary


def fold_results(job: CrossValidation) -> dict[str, list[dict]]:
    """The finished folds' results of every config, by config name."""
    by_config: dict[str, list[dict]] = {}
    for run in cv.plan_runs(job.configs, job.folds, job.repeats):
        result = cv.read_result(job.work_dir, run)
        by_config.setdefault(run.name, [])
        if result is not None:
            by_config[run.name].append(result)
    return by_config


def infant_decisions(job: CrossValidation) -> dict[str, Decisions]:
    """Each config's test decisions of its finished folds (their ``test_infants.json``)."""
    by_config: dict[str, Decisions] = {}
    for run in cv.plan_runs(job.configs, job.folds, job.repeats):
        decisions = by_config.setdefault(run.name, {})
        path = predictions_file(job.work_dir, run)
        if not (run.result_file(job.work_dir).is_file() and path.is_file()):
            continue
        infants = infants_from_predictions(path)
        tested = decisions.setdefault(run.repeat, {})
        for subject, label, predicted in zip(
            infants["ids"], infants["labels"], infants["predicted"], strict=True
        ):
            tested[subject] = (label, predicted)
    return by_config


def paired_difference(a: Decisions, b: Decisions) -> dict[str, float | int] | None:
    """Infant accuracy of A minus B on the infants both tested in every repeat both ran: the
    difference, its paired bootstrap 95 % CI and p-value (:func:`paired_bootstrap`, repeats
    averaged per infant like seeds) and, with one repeat, McNemar's exact p-value; None when
    they share no infant.

    Raises:
        ValueError: an infant has different labels in A and B.
    """
    repeats = sorted(set(a) & set(b))
    shared = [set(a[r]) & set(b[r]) for r in repeats]
    infants = sorted(set.intersection(*shared)) if shared else []
    if not infants:
        return None
    labels = [a[repeats[0]][s][0] for s in infants]
    for repeat in repeats:
        for subject, label in zip(infants, labels, strict=True):
            if a[repeat][subject][0] != label or b[repeat][subject][0] != label:
                raise ValueError(f"infant {subject} has other labels in the two configs' tests")
    predicted_a = np.array([[a[r][s][1] for s in infants] for r in repeats])
    predicted_b = np.array([[b[r][s][1] for s in infants] for r in repeats])
    paired = paired_bootstrap(
        np.array(labels), predicted_a, predicted_b, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL
    )
    single = len(repeats) == 1
    mcnemar = mcnemar_exact(np.array(labels), predicted_a[0], predicted_b[0]) if single else None
    return dict(
        paired_infants=len(infants),
        paired_difference=float(paired["difference"]),
        paired_ci_low=float(paired["ci_low"]),
        paired_ci_high=float(paired["ci_high"]),
        paired_p=float(paired["p_value"]),
        mcnemar_p=float(mcnemar["p_value"]) if mcnemar else math.nan,
    )


# -- the leaderboard -------------------------------------------------------------------------


def leaderboard_frame(
    backbones: Mapping[str, Mapping[str, str]],
    figures: Mapping[str, Mapping],
    results: Mapping[str, Sequence[Mapping]],
    paired: Mapping[str, Mapping] | None = None,
) -> pd.DataFrame:
    """One row per config (:data:`COLUMNS`), by infant accuracy; configs without finished folds
    keep their order after the others. ``paired``: each config's :func:`paired_difference`
    with the reference (NaN where absent)."""
    rows = []
    for name, streams in backbones.items():
        measured = figures.get(name, {})
        row = dict(config=name, rgb_backbone=streams["rgb"], flow_backbone=streams["flow"])
        row.update(accuracy_summary(results.get(name, [])))
        row.update((paired or {}).get(name) or {})
        for key in ("parameters", "flops_per_window"):
            row[key] = measured.get(key, pd.NA)
        for key in ("train_samples_per_s", "inference_windows_per_s"):
            row[key] = measured.get(key, math.nan)
        rows.append(row)
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    frame = frame.astype({"parameters": "Int64", "flops_per_window": "Int64", "runs": "int64",
                          "paired_infants": "Int64"})  # fmt: skip
    frame = frame.sort_values("accuracy_mean", ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def _interval(low: float, high: float) -> str:
    return "n/a" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"


def _number(value: object, scale: float, digits: int) -> str:
    return "n/a" if pd.isna(value) else f"{float(value) / scale:.{digits}f}"


def markdown_table(frame: pd.DataFrame, expected_runs: int) -> str:
    """The leaderboard as a Markdown table (rank, accuracy and MCC, cost, speed)."""
    rows = []
    for rank, row in enumerate(frame.itertuples(index=False), start=1):
        rows.append({
            "#": rank,
            "Config": row.config,
            "RGB backbone": row.rgb_backbone,
            "Flow backbone": row.flow_backbone,
            "Infant accuracy": cv.format_mean_sd((row.accuracy_mean, row.accuracy_sd)),
            "Accuracy 95 % CI": _interval(row.accuracy_ci_low, row.accuracy_ci_high),
            "MCC": cv.format_mean_sd((row.mcc_mean, row.mcc_sd)),
            "MCC 95 % CI": _interval(row.mcc_ci_low, row.mcc_ci_high),
            "Params (M)": _number(row.parameters, 1e6, 2),
            "GFLOPs/window": _number(row.flops_per_window, 1e9, 3),
            "Train samples/s": _number(row.train_samples_per_s, 1, 1),
            "Inference windows/s": _number(row.inference_windows_per_s, 1, 1),
            "Folds": f"{row.runs}/{expected_runs}",
        })  # fmt: skip
    return pd.DataFrame.from_records(rows).to_markdown(index=False, disable_numparse=True) + "\n"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def paired_section(frame: pd.DataFrame, reference: str) -> str:
    """Each config against the reference on the same infants, and a plain statement of which
    differences the paired 95 % CI resolves ("" when no config was paired)."""
    shown = frame[frame["paired_infants"].notna() & (frame["config"] != reference)]
    if shown.empty:
        return ""
    rows, above, below, unresolved = [], [], [], []
    for row in shown.itertuples(index=False):
        low, high = row.paired_ci_low, row.paired_ci_high
        verdict = "above" if low > 0 else "below" if high < 0 else "not resolved"
        {"above": above, "below": below}.get(verdict, unresolved).append(row.config)
        rows.append({
            "Config": row.config,
            "Infants": str(row.paired_infants),
            "Accuracy minus reference": f"{row.paired_difference:+.3f}",
            "95 % CI": f"[{low:+.3f}, {high:+.3f}]",
            "p (paired bootstrap)": _p(row.paired_p),
            "p (McNemar)": _p(row.mcnemar_p),
            "Against the reference": verdict,
        })  # fmt: skip
    table = pd.DataFrame.from_records(rows).to_markdown(index=False, disable_numparse=True)
    statement = []
    for verdict, names in (("Above", above), ("Below", below)):
        if names:
            statement.append(f"{verdict} the reference: {', '.join(names)}.")
    statement.append(
        f"Not resolved (the paired CI contains 0): {', '.join(unresolved)}; their order against "
        "the reference is not established on these infants." if unresolved
        else "Every paired difference is resolved."
    )  # fmt: skip
    return (
        f"\n## Paired with the reference\n\nReference: {reference}. Each config against it on "
        "the infants both tested (all finished folds' decisions, repeats averaged per infant): "
        "infant accuracy minus the reference's, 95 % CI and p-value of a paired percentile "
        f"bootstrap over infants ({BOOTSTRAP_RESAMPLES} resamples), and McNemar's exact test "
        "(one repeat). A config is above or below the reference only where the paired CI "
        f"excludes 0.\n\n{table}\n\n{' '.join(statement)}\n"
    )


def data_description(cfg: Config, tested: int | None = None) -> str:
    """The training infants in words: their subjects.csv, how many, whether the synthetic
    generator made them (its meta.json beside subjects.csv) and, when fewer, how many of them
    have a test decision (``tested``)."""
    table, ids, _ = cv.subject_table(cfg)
    meta = table.parent / "meta.json"
    synthetic = meta.is_file() and "generator_version" in json.loads(meta.read_text())
    kind = "synthetic infants (tools/data/make_synthetic_dataset.py)" if synthetic else "infants"
    text = f"{len(ids)} {kind} of {table}"
    if tested is not None and tested < len(ids):
        text += (
            f"; {tested} of them have a test decision (the dataset leaves out videos whose "
            "preprocessing fell back, as the cache's preprocess_summary.json lists)"
        )
    return text


def leaderboard_header(bench: BackboneBenchmark, data: str, figures: Mapping[str, Mapping]) -> str:
    synthetic = "synthetic infants" in data
    title = "# Backbone leaderboard" + (" (synthetic data)" if synthetic else "")
    speed = bench.speed
    device = next((f["device"] for f in figures.values()), "not measured")
    return (
        f"{title}\n\n"
        f"Data: {data}. Cross-validation: {bench.folds} folds by infant x {bench.repeats} "
        f"repeat(s), seed {bench.seed}, the same folds for every config (cv/folds/).\n\n"
        "Infant accuracy and MCC: mean ± sample sd over folds; 95 % CI: percentile bootstrap "
        f"over infants ({BOOTSTRAP_RESAMPLES} resamples of all folds' infant decisions).\n"
        "Parameters and GFLOPs: the whole recognizer, one window at the config's "
        "model.input_shapes (mmengine FlopAnalyzer: a multiply-add is one FLOP; element-wise "
        "operators and pooling uncounted).\n"
        f"Speed on {device}, random windows: training samples/s (forward, backward, AdamW step "
        "at the config's train batch size) and inference windows/s (its test batch size), "
        f"median of {speed.repeats} timings of {speed.steps} step(s) after {speed.warmup} "
        "warm-up step(s).\n\n"
    )


def plot_leaderboard(path: str | os.PathLike, frame: pd.DataFrame) -> Path | None:
    """Infant accuracy (pooled, 95 % CI bars) against inference windows/s, one labelled point
    per config; None (and no file) when no config has both."""
    from gm_plugins.utils.plotting import pyplot, save_figure

    shown = frame[frame["accuracy_pooled"].notna() & frame["inference_windows_per_s"].notna()]
    if shown.empty:
        Path(path).unlink(missing_ok=True)  # an old figure would contradict the table
        return None
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    middle = float(
        np.sqrt(shown.inference_windows_per_s.min() * shown.inference_windows_per_s.max())
    )
    for rank, row in shown.iterrows():
        low = max(0.0, row.accuracy_pooled - row.accuracy_ci_low)
        high = max(0.0, row.accuracy_ci_high - row.accuracy_pooled)
        point = (row.inference_windows_per_s, row.accuracy_pooled)
        axes.errorbar(*point, yerr=[[low], [high]], fmt="o", capsize=3)
        same = row.rgb_backbone == row.flow_backbone
        label = row.rgb_backbone if same else f"{row.rgb_backbone} / {row.flow_backbone}"
        right_half = row.inference_windows_per_s > middle  # labels point inwards, within the axes
        axes.annotate(
            f"{rank + 1}. {label}", point, xytext=(-6 if right_half else 6, 4),
            textcoords="offset points", ha="right" if right_half else "left", fontsize=7,
        )  # fmt: skip
    axes.set_xscale("log")
    axes.margins(x=0.1)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.xaxis.set_major_formatter(plain)
    axes.xaxis.set_minor_formatter(plain)
    axes.tick_params(axis="x", which="minor", labelsize=7)
    axes.set_ylim(-0.02, 1.02)
    chance = 1 / len(GM_CLASSES)
    axes.axhline(
        chance, color="grey", linestyle=":", linewidth=1, label="chance (balanced classes)"
    )
    axes.set_xlabel("inference windows/s (log scale)")
    axes.set_ylabel("infant accuracy, all folds pooled (95 % CI)")
    axes.set_title("Backbones: accuracy against speed (rank. RGB / flow backbone, one if the same)")
    axes.legend(loc="lower right", fontsize=7)
    return save_figure(figure, path)


def write_leaderboard(
    bench: BackboneBenchmark, configs: Mapping[str, Config], figures: Mapping[str, Mapping]
) -> str:
    """Write leaderboard.md, .csv and .png under the work dir; returns the Markdown."""
    job = bench.cross_validation()
    backbones = {cv.config_name(c): describe_backbones(cfg) for c, cfg in configs.items()}
    reference = next(iter(backbones))
    decisions = infant_decisions(job)
    paired = {
        name: paired_difference(decisions.get(name, {}), decisions.get(reference, {}))
        for name in backbones
        if name != reference
    }
    frame = leaderboard_frame(backbones, figures, fold_results(job), paired)
    tested = {s for by_repeat in decisions.values() for d in by_repeat.values() for s in d}
    data = data_description(next(iter(configs.values())), len(tested) if tested else None)
    expected = bench.folds * bench.repeats
    text = leaderboard_header(bench, data, figures) + markdown_table(frame, expected)
    text += paired_section(frame, reference)
    failed = sorted(set(backbones) - set(figures))
    if failed:
        text += f"\nNot measured (failed, see the tool's output): {', '.join(failed)}\n"
    write_text_atomic(bench.work_dir / "leaderboard.md", text)
    csv_text = frame.to_csv(index=False, float_format="%.4f", na_rep="nan")
    write_text_atomic(bench.work_dir / "leaderboard.csv", csv_text)
    plot_leaderboard(bench.work_dir / "leaderboard.png", frame)
    return text
