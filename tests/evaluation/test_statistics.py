"""Statistics of the method benchmark: bootstraps over infants, McNemar, the CI bar chart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, matthews_corrcoef

from gm_plugins.evaluation import (
    infant_bootstrap,
    mcnemar_exact,
    paired_bootstrap,
    plot_bars_with_ci,
)
from gm_plugins.evaluation import statistics as st
from gm_plugins.experiments import backbone_leaderboard as bl

RESAMPLES = 2000  # enough for these checks, quick on a busy machine


def labels_of(num_infants: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, num_infants)


def with_accuracy(labels: np.ndarray, right: int, seed: int = 1) -> np.ndarray:
    """Predictions right on exactly ``right`` randomly chosen infants, wrong on the others."""
    rng = np.random.default_rng(seed)
    predictions = (labels + rng.integers(1, 3, labels.size)) % 3  # all wrong
    chosen = rng.permutation(labels.size)[:right]
    predictions[chosen] = labels[chosen]
    return predictions


def test_point_estimates_are_sklearns():
    labels = labels_of(120)
    rng = np.random.default_rng(3)
    predictions = np.where(rng.random((3, 120)) < 0.6, labels, rng.integers(0, 3, (3, 120)))
    result = infant_bootstrap(labels, predictions, resamples=RESAMPLES)
    accuracies = [accuracy_score(labels, p) for p in predictions]
    mccs = [matthews_corrcoef(labels, p) for p in predictions]
    assert result["accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-12)
    assert result["mcc"] == pytest.approx(np.mean(mccs), abs=1e-12)
    assert result["accuracy_sd"] == pytest.approx(np.std(accuracies, ddof=1), abs=1e-12)
    assert result["mcc_sd"] == pytest.approx(np.std(mccs, ddof=1), abs=1e-12)
    assert (result["num_infants"], result["num_seeds"], result["resamples"]) == (120, 3, RESAMPLES)
    for metric in ("accuracy", "mcc"):
        assert result[f"{metric}_ci_low"] < result[metric] < result[f"{metric}_ci_high"]


def test_mcc_of_confusion_matrices_is_sklearns_and_zero_where_undefined():
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 3, (50, 40)), rng.integers(0, 3, (50, 40))
    matrices = np.zeros((50, 3, 3))
    np.add.at(matrices, (np.arange(50)[:, None], truth, predicted), 1)
    expected = [matthews_corrcoef(t, p) for t, p in zip(truth, predicted, strict=True)]
    np.testing.assert_allclose(st.mcc_from_confusion(matrices), expected, atol=1e-12)
    labels = labels_of(30)
    result = infant_bootstrap(labels, np.zeros(30, int), resamples=200)  # one class predicted
    assert result["mcc"] == 0.0 == matthews_corrcoef(labels, np.zeros(30, int))
    assert result["mcc_ci_low"] == result["mcc_ci_high"] == 0.0


def test_one_seed_has_no_sd_and_seeds_are_averaged():
    labels = labels_of(100)
    good, poor = with_accuracy(labels, 90), with_accuracy(labels, 50, seed=2)
    single = infant_bootstrap(labels, good, resamples=RESAMPLES)
    assert single["num_seeds"] == 1 and math.isnan(single["accuracy_sd"])
    both = infant_bootstrap(labels, np.stack([good, poor]), resamples=RESAMPLES)
    assert both["accuracy"] == pytest.approx(0.7)
    assert both["accuracy_sd"] == pytest.approx(np.std([0.9, 0.5], ddof=1))
    poor_alone = infant_bootstrap(labels, poor, resamples=RESAMPLES)
    assert both["mcc"] == pytest.approx((single["mcc"] + poor_alone["mcc"]) / 2)
    # The interval is of the seed mean: inside the two seeds' own intervals' span.
    assert poor_alone["accuracy_ci_high"] < both["accuracy_ci_high"] < single["accuracy_ci_high"]


def test_interval_width_follows_the_number_of_infants():
    widths = {}
    for num_infants in (60, 600):
        labels = labels_of(num_infants)
        result = infant_bootstrap(labels, with_accuracy(labels, int(0.8 * num_infants)))
        assert result["accuracy"] == pytest.approx(0.8)
        assert result["accuracy_ci_low"] < 0.8 < result["accuracy_ci_high"]
        widths[num_infants] = result["accuracy_ci_high"] - result["accuracy_ci_low"]
    assert widths[600] < 0.5 * widths[60]  # sqrt(10) narrower in theory


def test_interval_matches_the_normal_approximation():
    labels = labels_of(300)
    result = infant_bootstrap(labels, with_accuracy(labels, 240))  # accuracy 0.8
    half_width = (result["accuracy_ci_high"] - result["accuracy_ci_low"]) / 2
    # within 0.0035 of the 95 % normal half-width: a 90 % interval is 0.007 narrower
    assert half_width == pytest.approx(1.96 * math.sqrt(0.8 * 0.2 / 300), abs=0.0035)


def test_same_seed_same_result():
    labels = labels_of(80)
    predictions = np.stack([with_accuracy(labels, 60), with_accuracy(labels, 55, seed=4)])
    first = infant_bootstrap(labels, predictions, resamples=500, seed=7)
    assert infant_bootstrap(labels, predictions, resamples=500, seed=7) == first
    assert infant_bootstrap(labels, predictions, resamples=500, seed=8) != first
    paired = paired_bootstrap(labels, predictions[0], predictions[1], resamples=500, seed=7)
    assert paired == paired_bootstrap(labels, predictions[0], predictions[1], 500, 7)


def test_bad_input_is_refused():
    labels = labels_of(10)
    with pytest.raises(ValueError, match="shape"):
        infant_bootstrap(labels, np.zeros((2, 9), int))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        infant_bootstrap(labels, np.full(10, 3))
    with pytest.raises(ValueError, match="integers"):
        infant_bootstrap(labels, np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        mcnemar_exact(labels, labels, labels[:9])


def test_paired_bootstrap_of_identical_methods():
    labels = labels_of(300)
    predictions = np.stack([with_accuracy(labels, 200), with_accuracy(labels, 230, seed=5)])
    result = paired_bootstrap(labels, predictions, predictions.copy(), resamples=RESAMPLES)
    assert result == dict(difference=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, resamples=2000)


def test_paired_bootstrap_finds_a_clearly_better_method():
    labels = labels_of(300)
    better = np.stack([with_accuracy(labels, 270, seed=s) for s in (1, 2)])  # 90 %
    worse = np.stack([with_accuracy(labels, 180, seed=s) for s in (3, 4, 5)])  # 60 %
    result = paired_bootstrap(labels, better, worse)  # 2 seeds against 3
    assert result["difference"] == pytest.approx(0.3)
    assert 0 < result["ci_low"] < 0.3 < result["ci_high"]
    assert result["p_value"] < 0.001
    assert result["resamples"] == st.RESAMPLES
    reverse = paired_bootstrap(labels, worse, better)
    assert reverse["difference"] == pytest.approx(-0.3)
    assert reverse["ci_high"] < 0 and reverse["p_value"] == result["p_value"]


def test_paired_bootstrap_of_close_methods_is_not_significant():
    labels = labels_of(300)
    a, b = with_accuracy(labels, 240, seed=1), with_accuracy(labels, 236, seed=2)
    result = paired_bootstrap(labels, a, b, resamples=RESAMPLES)
    assert result["difference"] == pytest.approx(4 / 300)
    assert result["ci_low"] < 0 < result["ci_high"] and result["p_value"] > 0.2


def test_mcnemar_on_a_hand_computed_example():
    labels = np.zeros(40, int)
    a = np.array([0] * 10 + [1] * 2 + [0] * 20 + [2] * 8)  # right alone on 10, wrong alone on 2
    b = np.array([1] * 10 + [0] * 2 + [0] * 20 + [1] * 8)
    result = mcnemar_exact(labels, a, b)
    assert result["a_only"] == 10 and result["b_only"] == 2
    assert result["both_right"] == 20 and result["both_wrong"] == 8
    by_hand = 2 * sum(math.comb(12, k) for k in range(3)) / 2**12  # 2 * 79 / 4096
    assert result["p_value"] == pytest.approx(by_hand) == pytest.approx(0.0385742, abs=1e-6)
    assert result["p_value"] == pytest.approx(binomtest(10, 12, 0.5).pvalue)
    assert mcnemar_exact(labels, b, a)["p_value"] == pytest.approx(by_hand)
    agreeing = mcnemar_exact(labels, a, a)
    assert (agreeing["a_only"], agreeing["b_only"], agreeing["p_value"]) == (0, 0, 1.0)


def test_backbone_leaderboard_uses_these_helpers():
    assert bl.mcc_from_confusion is st.mcc_from_confusion
    assert bl.accuracy_from_confusion is st.accuracy_from_confusion
    assert bl.bootstrap_intervals is st.bootstrap_intervals


def test_bar_chart_is_a_png(tmp_path):
    names = [f"method {i} with a fairly long descriptive name {i:02d}" for i in range(10)]
    values = np.linspace(0.4, 0.85, 10)
    path = plot_bars_with_ci(
        tmp_path / "figures" / "accuracy.png", names, values, values - 0.05, values + 0.04,
        ylabel="infant accuracy", title="Methods", chance=1 / 3, highlight=9,
    )  # fmt: skip
    assert path == tmp_path / "figures" / "accuracy.png"
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000
    assert [p.name for p in path.parent.iterdir()] == ["accuracy.png"]  # no temporaries left
    mcc = plot_bars_with_ci(
        tmp_path / "mcc.png", ["a", "b"], [-0.1, 0.5], [-0.3, 0.3], [0.1, math.nan], "MCC", "MCC"
    )
    assert mcc.stat().st_size > 0
    with pytest.raises(ValueError, match="equal length"):
        plot_bars_with_ci(tmp_path / "x.png", ["a"], [0.5, 0.6], [0.4], [0.7], "y", "t")
