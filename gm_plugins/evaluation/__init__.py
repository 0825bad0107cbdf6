"""Infant-level evaluation, registered into MMAction2's ``METRICS`` registry."""

from .aggregation import (
    SubjectPrediction,
    aggregate_by_subject,
    classification_metrics,
    write_subject_predictions,
)
from .calibration import (
    TemperatureFit,
    agreement_threshold,
    apply_temperature,
    confidence_and_correct,
    coverage_accuracy,
    expected_calibration_error,
    fit_temperature,
    infant_nll,
    infant_scores,
    reliability_table,
    risk_coverage_curve,
    window_agreement,
    window_mutual_information,
)
from .domain import fit_domain, outside_domain
from .statistics import (
    infant_bootstrap,
    mcnemar_exact,
    paired_bootstrap,
    paired_seed_infant_bootstrap,
    plot_bars_with_ci,
    seed_infant_bootstrap,
)
from .subject_metric import SubjectMetric

__all__ = [
    "SubjectMetric",
    "SubjectPrediction",
    "TemperatureFit",
    "aggregate_by_subject",
    "agreement_threshold",
    "apply_temperature",
    "classification_metrics",
    "confidence_and_correct",
    "coverage_accuracy",
    "expected_calibration_error",
    "fit_domain",
    "fit_temperature",
    "infant_bootstrap",
    "infant_nll",
    "infant_scores",
    "mcnemar_exact",
    "outside_domain",
    "paired_bootstrap",
    "paired_seed_infant_bootstrap",
    "plot_bars_with_ci",
    "reliability_table",
    "risk_coverage_curve",
    "seed_infant_bootstrap",
    "window_agreement",
    "window_mutual_information",
    "write_subject_predictions",
]
