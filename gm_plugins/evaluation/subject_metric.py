"""Infant-level evaluation: window scores aggregated per infant, metrics at both levels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..datasets.subjects import GM_CLASSES
from .aggregation import (
    AGGREGATIONS,
    aggregate_by_subject,
    classification_metrics,
    mean_cross_entropy,
    write_subject_predictions,
)


def _field(sample, name: str):
    """Read ``name`` from a data sample given as a dict or as an ``ActionDataSample``."""
    if isinstance(sample, dict):
        return sample.get(name)
    return getattr(sample, name, None)


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class SubjectMetric(BaseMetric):
    """Window-level and infant-level classification metrics.

    Each window's ``pred_score`` (softmax probabilities when the head has
    ``average_clips='prob'``, raw scores with ``None``) is grouped by the metainfo
    ``subject_id``; one decision per infant is made by averaging the scores (the paper) or by
    majority vote. Keys: ``window/cross_entropy`` (mean cross-entropy of the window scores, the
    validation loss; first, so that ``save_best='auto'`` ranks by it; not named ``*loss*``
    because mmengine's log processor would smooth it across epochs), ``window/num_windows``,
    ``subject/num_subjects``, and ``window/<metric>`` and ``subject/<metric>`` for
    ``accuracy``, ``precision``, ``recall``, ``f1`` (macro), ``f1_<class>``, ``mcc``,
    ``kappa``, ``roc_auc`` (one-vs-rest macro; ``nan`` unless every class is present),
    ``roc_auc_<class>`` and ``confusion_matrix`` (nested list, rows = truth).

    Args:
        aggregation (str): ``'mean'`` or ``'vote'``. Defaults to ``'mean'``.
        out_file (str, optional): Where to write the per-infant predictions (``.json`` with
            the metrics, or ``.csv``) after each evaluation. Defaults to None.
        collect_device (str): Device for collecting results across ranks. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric keys. Defaults to None.
        collect_dir (str, optional): Directory for collecting results across ranks on CPU.
    """

    default_prefix = None

    def __init__(
        self,
        aggregation: str = "mean",
        out_file: str | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if out_file is not None and not str(out_file).lower().endswith((".json", ".csv")):
            raise ValueError(f"out_file must end in .json or .csv, got {out_file}")
        self.aggregation = aggregation
        self.out_file = out_file

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep each window's subject, label and scores."""
        for sample in data_samples:
            subject_id = _field(sample, "subject_id")
            if subject_id is None:
                raise KeyError(
                    "a data sample has no metainfo 'subject_id'; SubjectMetric needs the dataset "
                    "to set it on every window"
                )
            scores = _field(sample, "pred_score")
            label = _field(sample, "gt_label")
            if scores is None or label is None:
                raise KeyError("SubjectMetric needs 'pred_score' and 'gt_label' in each sample")
            window_index = _field(sample, "window_index")
            self.results.append(
                dict(
                    subject_id=str(subject_id),
                    window_index=-1 if window_index is None else int(window_index),
                    label=int(_to_numpy(label).reshape(-1)[0]),
                    scores=_to_numpy(scores).astype(np.float64).reshape(-1),
                )
            )

    def compute_metrics(self, results: list) -> dict:
        """Aggregate the windows per infant and compute both levels' metrics."""
        class_names = tuple((self.dataset_meta or {}).get("classes", GM_CLASSES))
        scores = np.stack([r["scores"] for r in results])
        if scores.shape[1] != len(class_names):
            raise ValueError(
                f"the model scores {scores.shape[1]} classes but the dataset names "
                f"{len(class_names)}: {class_names}"
            )
        labels = np.array([r["label"] for r in results])
        subject_ids = [r["subject_id"] for r in results]

        # The loss comes first: CheckpointHook(save_best='auto') ranks by the first key.
        metrics = {"window/cross_entropy": mean_cross_entropy(labels, scores)}
        metrics["window/num_windows"] = len(results)
        window = classification_metrics(labels, scores.argmax(axis=1), scores, class_names)
        metrics.update({f"window/{key}": value for key, value in window.items()})

        subjects = aggregate_by_subject(subject_ids, labels, scores, method=self.aggregation)
        subject = classification_metrics(
            [s.label for s in subjects],
            [s.predicted for s in subjects],
            np.stack([s.scores for s in subjects]),
            class_names,
        )
        metrics["subject/num_subjects"] = len(subjects)
        metrics.update({f"subject/{key}": value for key, value in subject.items()})

        if self.out_file is not None:
            path = write_subject_predictions(
                self.out_file, subjects, class_names, metrics, aggregation=self.aggregation
            )
            MMLogger.get_current_instance().info(f"per-subject predictions written to {path}")
        return metrics
