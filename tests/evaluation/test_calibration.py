"""Calibration of infant decisions: temperature scaling, ECE, window agreement, abstention."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import softmax

from gm_plugins.evaluation import calibration as cal
from gm_plugins.evaluation.aggregation import mean_decision, vote_decision
from gm_plugins.utils import plotting


def synthetic_infants(
    rng: np.random.Generator, num_infants: int, sharpness: float, num_classes: int = 3
) -> tuple[list[np.ndarray], np.ndarray]:
    """Infants whose label is drawn from a true distribution, windows from a miscalibrated model.

    Each infant has true class probabilities pi; its label is drawn from pi. Each window sees
    log(pi) plus a little noise, and the model reports softmax(sharpness * that): sharpness 1 is
    (nearly) calibrated, above 1 overconfident, below 1 underconfident.
    """
    infants, labels = [], []
    for _ in range(num_infants):
        pi = softmax(rng.normal(0.0, 1.5, num_classes))
        labels.append(rng.choice(num_classes, p=pi))
        num_windows = int(rng.integers(4, 16))
        window_logits = np.log(pi) + rng.normal(0.0, 0.3, (num_windows, num_classes))
        infants.append(softmax(sharpness * window_logits, axis=1))
    return infants, np.array(labels)


def ece_and_nll(infants, labels, temperature: float) -> tuple[float, float]:
    scores = cal.infant_scores(infants, temperature)
    return (
        cal.expected_calibration_error(*cal.confidence_and_correct(scores, labels)),
        cal.infant_nll(scores, labels),
    )


# -- temperature scaling ---------------------------------------------------------------------


def test_temperature_one_is_the_identity():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=50)
    np.testing.assert_allclose(cal.apply_temperature(p, 1.0), p, rtol=1e-12, atol=1e-15)


def test_temperature_softens_or_sharpens_and_keeps_the_top_class():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    soft, sharp = cal.apply_temperature(p, 3.0), cal.apply_temperature(p, 0.5)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    np.testing.assert_array_equal(soft.argmax(axis=1), p.argmax(axis=1))
    np.testing.assert_array_equal(sharp.argmax(axis=1), p.argmax(axis=1))
    assert (soft.max(axis=1) < p.max(axis=1)).all() and (sharp.max(axis=1) > p.max(axis=1)).all()
    # p^(1/T) renormalised, by hand for the first row at T = 0.5: squares.
    np.testing.assert_allclose(sharp[0], np.array([0.49, 0.04, 0.01]) / 0.54)
    np.testing.assert_allclose(cal.apply_temperature(p, 1e6), np.full((2, 3), 1 / 3), atol=1e-5)


def test_temperature_is_safe_for_zero_probabilities():
    with np.errstate(all="raise"):
        scaled = cal.apply_temperature(np.array([[1.0, 0.0], [0.0, 1.0]]), 2.0)
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled, [[1, 0], [0, 1]], atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        cal.apply_temperature(np.array([[0.5, 0.5]]), 0.0)


def test_infant_scores_follow_the_aggregation_rules():
    rng = np.random.default_rng(1)
    infants = [rng.dirichlet(np.ones(3), size=w) for w in (1, 4, 7)]
    mean = cal.infant_scores(infants, 1.0, "mean")
    vote = cal.infant_scores(infants, 2.0, "vote")
    for i, windows in enumerate(infants):
        np.testing.assert_allclose(mean[i], mean_decision(windows)[1])
        np.testing.assert_allclose(vote[i], vote_decision(windows)[1])
    scaled = cal.infant_scores(infants, 2.0, "mean")
    np.testing.assert_allclose(scaled[2], cal.apply_temperature(infants[2], 2.0).mean(axis=0))


def test_fit_on_overconfident_infants_gives_t_above_one_and_helps_held_out_infants():
    rng = np.random.default_rng(2)
    fit_infants, fit_labels = synthetic_infants(rng, 300, sharpness=2.5)
    held_out, held_out_labels = synthetic_infants(rng, 300, sharpness=2.5)
    fit = cal.fit_temperature(fit_infants, fit_labels)
    assert 1.8 < fit.temperature < 3.5
    assert fit.nll_after < fit.nll_before and fit.n_infants == 300 and fit.at_bound is None
    ece_before, nll_before = ece_and_nll(held_out, held_out_labels, 1.0)
    ece_after, nll_after = ece_and_nll(held_out, held_out_labels, fit.temperature)
    assert ece_after < 0.6 * ece_before and ece_before > 0.08
    assert nll_after < nll_before - 0.05
    json.dumps(fit.to_dict())


def test_fit_on_underconfident_infants_gives_t_below_one_and_helps_held_out_infants():
    rng = np.random.default_rng(3)
    fit_infants, fit_labels = synthetic_infants(rng, 300, sharpness=0.4)
    held_out, held_out_labels = synthetic_infants(rng, 300, sharpness=0.4)
    fit = cal.fit_temperature(fit_infants, fit_labels)
    assert 0.25 < fit.temperature < 0.6
    ece_before, nll_before = ece_and_nll(held_out, held_out_labels, 1.0)
    ece_after, nll_after = ece_and_nll(held_out, held_out_labels, fit.temperature)
    assert ece_after < 0.6 * ece_before and nll_after < nll_before


def test_fit_finds_the_minimum_of_the_infant_nll():
    rng = np.random.default_rng(4)
    infants, labels = synthetic_infants(rng, 60, sharpness=1.7)
    fit = cal.fit_temperature(infants, labels)
    dense = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2001))
    dense_nll = [cal.infant_nll(cal.infant_scores(infants, t), labels) for t in dense]
    assert fit.nll_after <= min(dense_nll) + 1e-7
    assert fit.nll_after == pytest.approx(
        cal.infant_nll(cal.infant_scores(infants, fit.temperature), labels), abs=1e-12
    )
    assert fit.nll_before == pytest.approx(
        cal.infant_nll(cal.infant_scores(infants, 1.0), labels), abs=1e-12
    )


def test_all_correct_and_confident_infants_push_t_to_the_lower_bound_and_say_so():
    infants = [np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([[0.15, 0.85], [0.3, 0.7]])]
    fit = cal.fit_temperature(infants, np.array([0, 1]), bounds=(0.1, 10.0))
    assert fit.at_bound == "lower" and fit.temperature == pytest.approx(0.1, rel=1e-3)
    assert "lower bound" in fit.note


def test_fit_refuses_vote_and_mismatched_labels():
    infants = [np.array([[0.9, 0.1]])]
    with pytest.raises(ValueError, match="vote"):
        cal.fit_temperature(infants, np.array([0]), aggregation="vote")
    with pytest.raises(ValueError, match="labels"):
        cal.fit_temperature(infants, np.array([0, 1]))


# -- calibration error -----------------------------------------------------------------------

HAND_CONFIDENCES = np.array([0.95, 0.85, 0.82, 0.55, 0.52, 0.3])
HAND_CORRECT = np.array([True, False, True, True, False, False])


def test_ece_of_a_hand_made_example():
    # Bins (0.9, 1]: conf .95, acc 1; (0.8, 0.9]: conf .835, acc .5; (0.5, 0.6]: conf .535,
    # acc .5; (0.2, 0.3]: conf .3 (on the edge, so in the bin it closes), acc 0.
    expected = (1 * 0.05 + 2 * 0.335 + 2 * 0.035 + 1 * 0.3) / 6
    assert cal.expected_calibration_error(HAND_CONFIDENCES, HAND_CORRECT) == pytest.approx(
        expected, abs=1e-12
    )
    assert expected == pytest.approx(1.09 / 6)


def test_reliability_table_of_the_hand_made_example():
    table = cal.reliability_table(HAND_CONFIDENCES, HAND_CORRECT)
    assert len(table) == 10 and [row["count"] for row in table] == [0, 0, 1, 0, 0, 2, 0, 0, 2, 1]
    assert table[2]["lower"] == pytest.approx(0.2) and table[2]["upper"] == pytest.approx(0.3)
    assert table[2]["accuracy"] == 0.0 and table[2]["mean_confidence"] == pytest.approx(0.3)
    assert table[8]["accuracy"] == 0.5 and table[8]["mean_confidence"] == pytest.approx(0.835)
    assert table[0] == {"lower": 0.0, "upper": 0.1, "count": 0, "mean_confidence": None,
                        "accuracy": None}  # fmt: skip
    json.dumps(table)  # JSON-ready: Python floats, ints and None


def test_a_confidence_on_a_bin_edge_falls_in_the_bin_that_edge_closes():
    table = cal.reliability_table(np.array([0.0, 0.5, 1.0]), np.array([True, True, True]), 4)
    assert [row["count"] for row in table] == [1, 1, 0, 1]  # [0, .25], (.25, .5], (.75, 1]


def test_ece_of_a_calibrated_sample_is_small_and_of_a_miscalibrated_one_is_not():
    rng = np.random.default_rng(5)
    confidences = rng.uniform(0.0, 1.0, 20000)
    calibrated = rng.uniform(size=20000) < confidences
    overconfident = rng.uniform(size=20000) < confidences**2
    assert cal.expected_calibration_error(confidences, calibrated) < 0.02
    assert cal.expected_calibration_error(confidences, overconfident) > 0.12


def test_ece_rejects_bad_input():
    with pytest.raises(ValueError):
        cal.expected_calibration_error(np.array([1.2]), np.array([True]))
    with pytest.raises(ValueError):
        cal.expected_calibration_error(np.array([]), np.array([]))


# -- window agreement ------------------------------------------------------------------------


def test_window_agreement_of_a_known_example():
    windows = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    assert cal.window_agreement(windows, 0) == 0.5
    assert cal.window_agreement(windows, 1) == 0.25
    # The mean (0.35, 0.375, 0.275) decides class 1, which only one window in four backs.
    assert mean_decision(windows)[0] == 1 and vote_decision(windows)[0] == 0
    assert cal.window_agreement(windows, mean_decision(windows)[0]) == 0.25


def test_mutual_information_bounds():
    assert cal.window_mutual_information(np.tile([0.7, 0.2, 0.1], (5, 1))) == pytest.approx(
        0.0, abs=1e-12
    )
    split = cal.window_mutual_information(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert split == pytest.approx(math.log(2))
    rng = np.random.default_rng(6)
    for _ in range(20):
        windows = rng.dirichlet(np.full(4, 0.3), size=int(rng.integers(1, 10)))
        assert 0.0 <= cal.window_mutual_information(windows) <= math.log(4) + 1e-12
    # Softer windows that still disagree carry less mutual information.
    soft = cal.window_mutual_information(np.array([[0.6, 0.4], [0.4, 0.6]]))
    assert 0 < soft < split


def test_agreement_threshold_rule():
    agreements = np.array([0.9, 0.55, 0.8, 0.3, 1.0, 0.7])
    correct = np.array([True, True, True, False, True, True])
    # Few correct infants: the lowest agreement among them; the wrong one does not count.
    assert cal.agreement_threshold(agreements, correct) == 0.55
    assert cal.agreement_threshold(agreements) == 0.3
    # Many correct infants: one odd low agreement does not set the bar.
    many = np.concatenate([[0.2], np.linspace(0.6, 1.0, 99)])
    threshold = cal.agreement_threshold(many, np.ones(100, bool), quantile=0.05)
    assert 0.6 < threshold < 0.65 and threshold in many
    assert (many < threshold).mean() <= 0.05
    assert cal.agreement_threshold(agreements, np.zeros(6, bool)) == 0.0


# -- abstention ------------------------------------------------------------------------------


def test_coverage_accuracy():
    confidences = np.array([0.9, 0.8, 0.6, 0.4])
    correct = np.array([True, True, False, False])
    result = cal.coverage_accuracy(confidences, correct, confidences < 0.7)
    assert result["coverage"] == 0.5 and result["accuracy_decided"] == 1.0
    assert result["accuracy_all"] == 0.5 and result["n"] == 4 and result["n_decided"] == 2
    assert result["mean_confidence_decided"] == pytest.approx(0.85)
    none_decided = cal.coverage_accuracy(confidences, correct, np.ones(4, bool))
    assert none_decided["coverage"] == 0.0 and none_decided["accuracy_decided"] is None
    json.dumps(result)


def test_risk_coverage_curve_handles_ties():
    confidences = np.array([0.6, 0.9, 0.6, 0.4])
    correct = np.array([False, True, True, False])
    curve = cal.risk_coverage_curve(confidences, correct)
    assert curve == [(0.9, 0.25, 1.0), (0.6, 0.75, 2 / 3), (0.4, 1.0, 0.5)]


# -- figures ---------------------------------------------------------------------------------


def test_reliability_diagram_and_coverage_plot_are_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(7)
    confidences = rng.uniform(0.3, 1.0, 200)
    correct = rng.uniform(size=200) < confidences
    tables = {
        "before": cal.reliability_table(confidences, correct),
        "after": cal.reliability_table(np.sqrt(confidences), correct),
    }
    assert plotting._table_ece(tables["before"]) == pytest.approx(
        cal.expected_calibration_error(confidences, correct)
    )
    path = plotting.plot_reliability_diagram(tables, tmp_path / "figures" / "reliability.png")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000
    assert Image.open(path).size == (552, 504)  # 4.6 x 4.2 inches at 120 dpi
    assert [p.name for p in path.parent.iterdir()] == ["reliability.png"]  # no temporaries
    curve = cal.risk_coverage_curve(confidences, correct)
    coverage = plotting.plot_coverage_accuracy(curve, tmp_path / "coverage.png")
    assert coverage.read_bytes().startswith(b"\x89PNG") and coverage.stat().st_size > 1000
