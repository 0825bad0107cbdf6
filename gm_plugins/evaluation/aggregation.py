"""Infant-level decisions from window scores, classification metrics and prediction files.

Plain functions on numpy arrays (scikit-learn does the arithmetic), free of OpenMMLab, so the
metric's logic is tested in milliseconds and reused by the cross-validation reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import softmax
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    log_loss,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from gm_plugins.datasets.subjects import GM_CLASSES
from gm_plugins.utils.io import write_csv_atomic, write_json_atomic

AGGREGATIONS = ("mean", "vote")
#: Columns of a prediction CSV before the ``score_<class>`` columns.
CSV_COLUMNS = ("subject_id", "label", "label_name", "predicted", "predicted_name", "num_windows")


@dataclass(frozen=True)
class SubjectPrediction:
    """The decision for one infant.

    Attributes:
        subject_id: The infant.
        label: Ground-truth class index.
        predicted: Predicted class index.
        scores: (K,) aggregated scores: the mean window score for ``'mean'``, the fraction of
            windows voting for each class for ``'vote'``.
        num_windows: How many windows were aggregated.
    """

    subject_id: str
    label: int
    predicted: int
    scores: np.ndarray
    num_windows: int


def mean_decision(window_scores: np.ndarray) -> tuple[int, np.ndarray]:
    """Average (W, K) window scores; the arg-max of the mean is the class (the paper's rule)."""
    mean_scores = window_scores.mean(axis=0)
    return int(mean_scores.argmax()), mean_scores


def vote_decision(window_scores: np.ndarray) -> tuple[int, np.ndarray]:
    """Majority vote of the windows' arg-max classes.

    A tie between classes is broken by the higher mean score among the tied classes, so the
    decision never depends on class order.

    Returns:
        tuple: the class and the (K,) vote fractions.
    """
    num_classes = window_scores.shape[1]
    votes = np.bincount(window_scores.argmax(axis=1), minlength=num_classes)
    tied = np.flatnonzero(votes == votes.max())
    mean_scores = window_scores.mean(axis=0)
    winner = int(tied[np.argmax(mean_scores[tied])])
    return winner, votes / votes.sum()


def aggregate_by_subject(
    subject_ids: Sequence[str],
    labels: Sequence[int],
    window_scores: np.ndarray,
    method: str = "mean",
) -> list[SubjectPrediction]:
    """Group windows by infant and decide one class per infant.

    Args:
        subject_ids: (W,) infant of each window.
        labels: (W,) ground-truth class of each window; constant within an infant.
        window_scores: (W, K) class scores of each window (probabilities or logits).
        method: ``'mean'`` (average the scores, the paper) or ``'vote'`` (majority vote).

    Returns:
        list[SubjectPrediction]: One entry per infant, in order of first appearance.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {method!r}")
    window_scores = np.asarray(window_scores, dtype=np.float64)
    if window_scores.ndim != 2 or len(window_scores) != len(subject_ids) != len(labels):
        raise ValueError(
            f"expected (W, K) scores with W = {len(subject_ids)} subject ids and labels, got "
            f"scores {window_scores.shape} and {len(labels)} labels"
        )
    rows_by_subject: dict[str, list[int]] = {}
    for row, subject_id in enumerate(subject_ids):
        rows_by_subject.setdefault(str(subject_id), []).append(row)
    decide = mean_decision if method == "mean" else vote_decision
    predictions = []
    for subject_id, rows in rows_by_subject.items():
        subject_labels = {int(labels[row]) for row in rows}
        if len(subject_labels) != 1:
            raise ValueError(
                f"windows of subject {subject_id!r} carry different labels "
                f"{sorted(subject_labels)}; an infant has one class"
            )
        predicted, scores = decide(window_scores[rows])
        predictions.append(
            SubjectPrediction(subject_id, subject_labels.pop(), predicted, scores, len(rows))
        )
    return predictions


def one_vs_rest_roc_auc(
    labels: np.ndarray, scores: np.ndarray, num_classes: int
) -> tuple[float, list[float]]:
    """Macro one-vs-rest ROC-AUC and the per-class AUCs.

    Each class's AUC ranks that class's score column (pass probabilities, as
    :func:`classification_metrics` does, for the usual one-vs-rest definition). An AUC is
    undefined (``nan``) for a class that is absent or is the only class present; the
    macro value is then ``nan`` as well.
    """
    per_class = []
    for k in range(num_classes):
        positives = labels == k
        if positives.all() or not positives.any():
            per_class.append(math.nan)
        else:
            per_class.append(float(roc_auc_score(positives, scores[:, k])))
    macro = math.nan if any(math.isnan(auc) for auc in per_class) else float(np.mean(per_class))
    return macro, per_class


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """(M, K) scores as probabilities: rows that already are distributions stay, else softmax.

    Heads with ``average_clips='prob'`` give probabilities, heads with ``None`` give logits.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_distribution = (scores >= 0).all() and np.allclose(scores.sum(axis=1), 1.0, atol=1e-4)
    if not is_distribution:
        return softmax(scores, axis=1)
    # Renormalise away the float32 rounding of the head's softmax.
    return scores / scores.sum(axis=1, keepdims=True)


def mean_cross_entropy(labels: Sequence[int], scores: np.ndarray) -> float:
    """Mean cross-entropy of (M, K) scores (probabilities or logits) against (M,) labels."""
    probabilities = as_probabilities(scores)
    return float(log_loss(labels, probabilities, labels=list(range(probabilities.shape[1]))))


def classification_metrics(
    labels: Sequence[int],
    predicted: Sequence[int],
    scores: np.ndarray,
    class_names: Sequence[str] = GM_CLASSES,
) -> dict:
    """Accuracy, macro precision/recall/F1, per-class F1, MCC, Cohen's kappa, ROC-AUC, confusion.

    Args:
        labels: (M,) ground-truth class indices.
        predicted: (M,) predicted class indices.
        scores: (M, K) probabilities or logits (turned into probabilities) for the ROC-AUC.
        class_names: K class names, used in the per-class keys (``f1_WMs`` ...).

    Returns:
        dict: Scalars keyed ``accuracy``, ``precision``, ``recall``, ``f1``, ``f1_<class>``,
        ``mcc``, ``kappa``, ``roc_auc`` (``nan`` unless every class is present),
        ``roc_auc_<class>``, and ``confusion_matrix`` (K x K nested list, rows = truth).
    """
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    num_classes = len(class_names)
    if scores.shape != (len(labels), num_classes):
        raise ValueError(
            f"scores have shape {scores.shape} but there are {len(labels)} samples and "
            f"{num_classes} classes {tuple(class_names)}"
        )
    class_indices = list(range(num_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, labels=class_indices, average="macro", zero_division=0
    )
    per_class_f1 = f1_score(labels, predicted, labels=class_indices, average=None, zero_division=0)
    roc_auc, per_class_auc = one_vs_rest_roc_auc(labels, as_probabilities(scores), num_classes)
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
    metrics.update(
        {f"f1_{name}": float(v) for name, v in zip(class_names, per_class_f1, strict=True)}
    )
    metrics["mcc"] = float(matthews_corrcoef(labels, predicted))
    metrics["kappa"] = _cohen_kappa(labels, predicted, class_indices)
    metrics["roc_auc"] = roc_auc
    metrics.update(
        {f"roc_auc_{name}": auc for name, auc in zip(class_names, per_class_auc, strict=True)}
    )
    metrics["confusion_matrix"] = confusion_matrix(labels, predicted, labels=class_indices).tolist()
    return metrics


def _cohen_kappa(labels: np.ndarray, predicted: np.ndarray, class_indices: list[int]) -> float:
    # Kappa is undefined when both raters use one and the same class (0/0); report nan quietly.
    if len(set(labels.tolist()) | set(predicted.tolist())) < 2:
        return math.nan
    return float(cohen_kappa_score(labels, predicted, labels=class_indices))


def write_subject_predictions(
    path: str | Path,
    predictions: Sequence[SubjectPrediction],
    class_names: Sequence[str] = GM_CLASSES,
    metrics: Mapping | None = None,
    aggregation: str = "mean",
) -> Path:
    """Write per-infant predictions to ``path`` (``.json`` or ``.csv``) atomically.

    JSON holds ``classes``, ``aggregation``, ``subjects`` (one record per infant) and the
    ``metrics``; CSV holds one row per infant with a ``score_<class>`` column per class. The file
    is written next to its destination and renamed, so a crash never leaves a partial file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise ValueError(f"out_file must end in .json or .csv, got {path}")
    records = [
        {
            "subject_id": p.subject_id,
            "label": p.label,
            "label_name": class_names[p.label],
            "predicted": p.predicted,
            "predicted_name": class_names[p.predicted],
            "num_windows": p.num_windows,
            "scores": [float(s) for s in p.scores],
        }
        for p in predictions
    ]
    if suffix == ".json":
        document = {
            "classes": list(class_names),
            "aggregation": aggregation,
            "subjects": records,
            "metrics": _json_safe(dict(metrics or {})),
        }
        write_json_atomic(path, document, indent=2)
    else:
        header = [*CSV_COLUMNS, *(f"score_{name}" for name in class_names)]
        rows = (
            [record[key] for key in CSV_COLUMNS] + [f"{s:.6g}" for s in record["scores"]]
            for record in records
        )
        write_csv_atomic(path, header, rows)
    return path


def _json_safe(value):
    """Replace nan (not valid JSON) by None, recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def levels_table(metrics: Mapping, keys: Sequence[str]) -> str:
    """Infant-level and window-level values of ``keys`` side by side, as a Markdown table.

    Args:
        metrics: :class:`~gm_plugins.evaluation.SubjectMetric` keys (``subject/<key>``,
            ``window/<key>``, ``subject/num_subjects``, ``window/num_windows``).
    """
    import pandas as pd

    infants = f"infant ({metrics['subject/num_subjects']})"
    windows = f"window ({metrics['window/num_windows']})"
    table = pd.DataFrame(
        {
            "metric": list(keys),
            infants: [metrics[f"subject/{key}"] for key in keys],
            windows: [metrics[f"window/{key}"] for key in keys],
        }
    )
    return table.to_markdown(index=False, floatfmt=".3f")
