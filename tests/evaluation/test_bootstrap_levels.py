"""The benchmark's intervals are 95 % intervals: coverage by simulation and widths against
analytic ones (a 90 % interval passed off as 95 % fails here), and the two-level bootstrap
(seeds, then infants) with its pairing by seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gm_plugins.evaluation import statistics as st

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval (1.645 for 90 %)


def bernoulli_predictions(labels: np.ndarray, accuracy: np.ndarray, rng) -> np.ndarray:
    """(S, N) predictions, right on each infant with probability ``accuracy[s]``."""
    accuracy = np.asarray(accuracy, np.float64).reshape(-1, 1)
    right = rng.random((accuracy.shape[0], labels.size)) < accuracy
    return np.where(right, labels, (labels + rng.integers(1, 3, right.shape)) % 3)


def test_infant_bootstrap_covers_the_true_accuracy_95_percent_of_the_time():
    # 1000 test sets of 100 infants from a method with true accuracy 0.75: a 95 % interval
    # covers it in about 94-95 % of them (sd of the estimate 0.007), a 90 % one in about 89 %.
    rng = np.random.default_rng(2024)
    truth, experiments, infants = 0.75, 1000, 100
    covered = {0.95: 0, 0.90: 0}
    for experiment in range(experiments):
        labels = rng.integers(0, 3, infants)
        predictions = bernoulli_predictions(labels, [truth], rng)
        default = st.infant_bootstrap(labels, predictions, resamples=1000, seed=experiment)
        covered[0.95] += default["accuracy_ci_low"] <= truth <= default["accuracy_ci_high"]
        narrow = st.infant_bootstrap(
            labels, predictions, resamples=1000, seed=experiment, level=0.90
        )
        covered[0.90] += narrow["accuracy_ci_low"] <= truth <= narrow["accuracy_ci_high"]
    coverage = {level: count / experiments for level, count in covered.items()}
    assert st.CI_LEVEL == 0.95 and default["level"] == 0.95
    assert 0.93 <= coverage[0.95] <= 0.97, coverage
    assert coverage[0.90] < 0.925, coverage  # the check above tells the two apart


def test_infant_interval_has_the_normal_width_of_a_large_binomial_sample():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 3000)
    predictions = labels.copy()
    wrong = rng.permutation(3000)[:600]  # accuracy exactly 0.8
    predictions[wrong] = (labels[wrong] + 1) % 3
    result = st.infant_bootstrap(labels, predictions, resamples=4000)
    half_width = (result["accuracy_ci_high"] - result["accuracy_ci_low"]) / 2
    normal = Z95 * math.sqrt(0.8 * 0.2 / 3000)  # 0.0143; a 90 % interval: 0.0120
    assert half_width == pytest.approx(normal, rel=0.05)


def test_paired_interval_has_the_normal_width_of_the_paired_differences():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, 3000)
    a = bernoulli_predictions(labels, [0.8], rng)[0]
    b = bernoulli_predictions(labels, [0.75], rng)[0]
    gap = (a == labels).astype(float) - (b == labels)
    result = st.paired_bootstrap(labels, a, b, resamples=4000)
    half_width = (result["ci_high"] - result["ci_low"]) / 2
    assert result["difference"] == pytest.approx(gap.mean())
    assert half_width == pytest.approx(Z95 * gap.std() / math.sqrt(3000), rel=0.05)


def two_level_variance(right: np.ndarray) -> float:
    """The variance of the two-level bootstrap's seed mean, in expectation over resamples.

    ``right`` is (S, N): 1 where seed s is right on infant i. With w the seed multiplicities
    over S (multinomial) and C the (S, S) covariance of the seeds' right-vectors over infants:
    Var = var(a_s) / S + (1 / N) E[w' C w], E[w w'] = 11'/S^2 + (I/S - 11'/S^2) / S.
    """
    num_seeds, num_infants = right.shape
    accuracies = right.mean(axis=1)
    covariance = np.cov(right, bias=True)
    ones = np.ones(num_seeds)
    second_moment = np.outer(ones, ones) / num_seeds**2
    second_moment += (np.eye(num_seeds) / num_seeds - np.outer(ones, ones) / num_seeds**2) / (
        num_seeds
    )
    seeds_part = accuracies.var() / num_seeds
    infants_part = float(np.sum(covariance * second_moment)) / num_infants
    return seeds_part + infants_part


def test_two_level_interval_has_the_width_of_seed_and_infant_variance():
    # 40 seeds whose accuracies spread with sd 0.05 around 0.75, on 500 infants.
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 500)
    predictions = bernoulli_predictions(labels, rng.normal(0.75, 0.05, 40).clip(0, 1), rng)
    result = st.seed_infant_bootstrap(labels, predictions, resamples=4000)
    one_level = st.infant_bootstrap(labels, predictions, resamples=4000)
    half_width = (result["accuracy_ci_high"] - result["accuracy_ci_low"]) / 2
    expected = Z95 * math.sqrt(two_level_variance((predictions == labels).astype(float)))
    assert half_width == pytest.approx(expected, rel=0.06)
    assert result["levels"] == 2 and one_level["levels"] == 1
    one_half_width = (one_level["accuracy_ci_high"] - one_level["accuracy_ci_low"]) / 2
    assert half_width > 2 * one_half_width  # the seeds' spread dominates here
    assert result["accuracy"] == one_level["accuracy"]  # same point estimate


def test_two_level_bootstrap_of_one_seed_is_the_infant_bootstrap():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 3, 120)
    predictions = bernoulli_predictions(labels, [0.7], rng)
    one = st.infant_bootstrap(labels, predictions, resamples=500, seed=3)
    two = st.seed_infant_bootstrap(labels, predictions, resamples=500, seed=3)
    assert {k: v for k, v in two.items() if k != "levels"} == {
        k: v for k, v in one.items() if k != "levels"
    }
    other = bernoulli_predictions(labels, [0.6], rng)
    paired_one = st.paired_bootstrap(labels, predictions, other, resamples=500, seed=3)
    paired_two = st.paired_seed_infant_bootstrap(
        labels, predictions, other, [1], [1], resamples=500, seed=3
    )
    for key in ("difference", "ci_low", "ci_high", "p_value"):
        assert paired_two[key] == pytest.approx(paired_one[key], abs=1e-12)


def test_paired_two_level_bootstrap_pairs_by_seed_number():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, 200)
    a = bernoulli_predictions(labels, [0.5, 0.7, 0.9], rng)
    # B is A, its rows in another order: paired by seed number, every difference is 0.
    paired = st.paired_seed_infant_bootstrap(
        labels, a, a[::-1], [1, 2, 3], [3, 2, 1], resamples=1000
    )
    assert paired["seeds_paired"] and paired["ci_low"] == paired["ci_high"] == 0.0
    assert paired["p_value"] == 1.0
    # Without seed numbers (or with other seeds), the seeds are drawn apart: a wide interval.
    apart = st.paired_seed_infant_bootstrap(labels, a, a[::-1], resamples=1000)
    other_seeds = st.paired_seed_infant_bootstrap(
        labels, a, a[::-1], [1, 2, 3], [0, 1, 2], resamples=1000
    )
    for result in (apart, other_seeds):
        assert not result["seeds_paired"]
        assert result["ci_low"] < -0.1 and result["ci_high"] > 0.1
    with pytest.raises(ValueError, match="distinct seeds"):
        st.paired_seed_infant_bootstrap(labels, a, a, [1, 1, 2], [1, 2, 3])


def test_two_level_paired_bootstrap_finds_a_clearly_better_method():
    rng = np.random.default_rng(12)
    labels = rng.integers(0, 3, 300)
    better = bernoulli_predictions(labels, [0.9, 0.88, 0.91], rng)
    worse = bernoulli_predictions(labels, [0.6, 0.62, 0.58], rng)
    result = st.paired_seed_infant_bootstrap(labels, better, worse, [1, 2, 3], [0, 1, 2])
    assert 0 < result["ci_low"] < result["difference"] < result["ci_high"]
    assert result["p_value"] < 0.001
