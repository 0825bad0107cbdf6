"""What a bundle fits on its validation infants: temperature, window agreement, domain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gm_plugins.deploy.validation import VALIDATION_FORMAT, ValidationInfant, fit_validation
from gm_plugins.evaluation.calibration import expected_calibration_error, infant_scores


def overconfident_infants(count: int, seed: int, sharpness: float = 3.0) -> list:
    """Infants drawn from calibrated class probabilities whose 12 windows (3 classes) a model
    reports ``sharpness`` times too confidently."""
    rng = np.random.default_rng(seed)
    infants = []
    for index in range(count):
        logits = rng.normal(0, 1.0, 3)
        truth = np.exp(logits) / np.exp(logits).sum()
        label = int(rng.choice(3, p=truth))
        window_logits = logits + rng.normal(0, 0.2, (12, 3))
        windows = np.exp(sharpness * window_logits)
        windows /= windows.sum(1, keepdims=True)
        figures = dict(keypoint_score_median=float(rng.uniform(0.6, 0.9)), body_change=0.1)
        infants.append(ValidationInfant(f"s{index:03d}", label, windows, figures))
    return infants


def test_calibration_fitted_on_validation_lowers_the_ece_of_held_out_infants():
    validation = fit_validation(overconfident_infants(200, seed=0))
    calibration = validation["calibration"]
    assert validation["format"] == VALIDATION_FORMAT and validation["infants"] == 200
    assert calibration["temperature"] > 1.5  # the windows were too sharp
    assert calibration["ece_after"] < calibration["ece_before"]
    held_out = overconfident_infants(300, seed=1)
    labels = np.array([infant.label for infant in held_out])
    windows = [infant.window_probabilities for infant in held_out]

    def ece(temperature: float) -> float:
        scores = infant_scores(windows, temperature)
        return expected_calibration_error(scores.max(1), scores.argmax(1) == labels)

    assert ece(calibration["temperature"]) < 0.7 * ece(1.0)
    assert len(calibration["reliability_after"]) == calibration["bins"] == 10
    json.dumps(validation)  # goes into the manifest as it is


def test_agreement_and_domain_come_from_the_validation_infants():
    infants = overconfident_infants(30, seed=2)
    validation = fit_validation(infants, domain_margin=0.0)
    agreement = validation["agreement"]
    assert 0 < agreement["min_window_agreement"] <= agreement["validation_median"] <= 1
    assert agreement["min_window_agreement"] >= agreement["validation_min"]
    score = validation["domain"]["figures"]["keypoint_score_median"]
    values = [infant.figures["keypoint_score_median"] for infant in infants]
    assert score["min"] == pytest.approx(min(values), abs=1e-6)
    assert score["low"] == pytest.approx(min(values) - 0.01, abs=1e-6)  # the absolute floor
    assert validation["subject_ids"] == [infant.subject_id for infant in infants]


def test_vote_bundles_are_not_calibrated_and_no_infants_is_refused():
    validation = fit_validation(overconfident_infants(10, seed=3), aggregation="vote")
    assert validation["calibration"]["temperature"] == 1.0
    with pytest.raises(ValueError, match="no validation infant"):
        fit_validation([])


def test_a_bundle_never_sharpens_the_classifiers_windows():
    """Underconfident windows would fit T < 1; the bundle keeps T = 1 and says why."""
    validation = fit_validation(overconfident_infants(200, seed=4, sharpness=0.4))
    calibration = validation["calibration"]
    assert calibration["temperature"] == 1.0
    assert "would sharpen the windows; kept T = 1" in calibration["note"]
    assert calibration["ece_after"] == calibration["ece_before"]
