"""Infant-level evaluation, registered into MMAction2's ``METRICS`` registry."""

from .aggregation import (
    SubjectPrediction,
    aggregate_by_subject,
    classification_metrics,
    write_subject_predictions,
)
from .statistics import (
    infant_bootstrap,
    mcnemar_exact,
    paired_bootstrap,
    plot_bars_with_ci,
)
from .subject_metric import SubjectMetric

__all__ = [
    "SubjectMetric",
    "SubjectPrediction",
    "aggregate_by_subject",
    "classification_metrics",
    "infant_bootstrap",
    "mcnemar_exact",
    "paired_bootstrap",
    "plot_bars_with_ci",
    "write_subject_predictions",
]
