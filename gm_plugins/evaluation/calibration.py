"""Calibration of infant decisions: temperature scaling, ECE, window agreement, abstention.

A model's window probabilities are often over- or under-confident. Temperature scaling divides
the window log-probabilities by one number T (``p ∝ p^(1/T)``): T > 1 softens, T < 1 sharpens,
and the arg-max of every window stays. T is fitted on validation infants so that the
*infant-level* scores (the windows aggregated as :func:`~gm_plugins.evaluation.aggregation.
mean_decision` does) have the lowest negative log-likelihood of the true class; the same T is
then applied to the windows of each new video.

Also here: the expected calibration error and its reliability table, two measures of how much
one infant's windows agree, a rule for the least agreement worth a decision, and the
coverage/accuracy trade-off of abstaining. Plain functions on numpy arrays, free of OpenMMLab;
every returned number is a Python float (JSON-ready).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import softmax, xlogy

from gm_plugins.evaluation.aggregation import AGGREGATIONS

#: Probabilities are clipped to at least this before a logarithm.
PROBABILITY_FLOOR = 1e-12
#: Temperatures searched by :func:`fit_temperature`, unless a caller asks for others.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Points of the coarse log-spaced grid that seeds the bounded search.
GRID_POINTS = 41
#: A fitted log-temperature this close to a bound's logarithm counts as on the bound.
BOUND_TOLERANCE = 1e-3

__all__ = [
    "PROBABILITY_FLOOR",
    "TEMPERATURE_BOUNDS",
    "TemperatureFit",
    "agreement_threshold",
    "apply_temperature",
    "confidence_and_correct",
    "coverage_accuracy",
    "expected_calibration_error",
    "fit_temperature",
    "infant_nll",
    "infant_scores",
    "reliability_table",
    "risk_coverage_curve",
    "window_agreement",
    "window_mutual_information",
]


# -- temperature scaling ---------------------------------------------------------------------


def apply_temperature(window_probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(..., K) probabilities rescaled by ``temperature``: softmax(log p / T) along the last axis.

    Zeros are clipped to :data:`PROBABILITY_FLOOR` before the logarithm, so they stay finite.
    T = 1 returns the (renormalised) input up to float rounding.
    """
    temperature = _checked_temperature(temperature)
    probabilities = np.asarray(window_probabilities, dtype=np.float64)
    logits = np.log(np.clip(probabilities, PROBABILITY_FLOOR, None))
    return softmax(logits / temperature, axis=-1)


@dataclass(frozen=True)
class TemperatureFit:
    """The temperature fitted on validation infants.

    Attributes:
        temperature: T to pass to :func:`apply_temperature` for each new video's windows.
        nll_before: Mean infant-level negative log-likelihood (nats) at T = 1.
        nll_after: The same at the fitted T (never above ``nll_before`` unless T = 1 lies
            outside the bounds).
        n_infants: How many validation infants the fit saw.
        aggregation: How windows became infant scores (``'mean'``).
        at_bound: ``'lower'`` or ``'upper'`` when the fit stopped on a bound, else ``None``.
        note: Why a fit on a bound should be read with care; empty otherwise.
    """

    temperature: float
    nll_before: float
    nll_after: float
    n_infants: int
    aggregation: str = "mean"
    at_bound: str | None = None
    note: str = ""

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def infant_scores(
    infant_window_probabilities: Sequence[np.ndarray],
    temperature: float = 1.0,
    aggregation: str = "mean",
) -> np.ndarray:
    """(N, K) infant scores: each infant's (W_i, K) windows temperature-scaled and aggregated.

    ``'mean'`` averages the scaled windows (as ``mean_decision``), ``'vote'`` gives the vote
    fractions (as ``vote_decision``; those do not depend on T).
    """
    stacked, starts, counts = _stack(infant_window_probabilities)
    return _aggregate(apply_temperature(stacked, temperature), starts, counts, aggregation)


def infant_nll(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of (N,) true classes under (N, K) infant scores."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or len(scores) != len(labels) or not len(labels):
        raise ValueError(f"expected (N, K) scores and N > 0 labels, got {scores.shape}")
    true = scores[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(true, PROBABILITY_FLOOR, None)).mean())


def fit_temperature(
    infant_window_probabilities: Sequence[np.ndarray],
    labels: np.ndarray,
    aggregation: str = "mean",
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
) -> TemperatureFit:
    """Fit T on validation infants by the NLL of their infant-level scores.

    Args:
        infant_window_probabilities: One (W_i, K) array of window probabilities per infant.
        labels: (N,) true class of each infant.
        aggregation: ``'mean'``. ``'vote'`` is refused: vote fractions count arg-maxes, which
            no temperature changes, so there is nothing to fit.
        bounds: Lowest and highest T searched.

    A coarse log-spaced grid over ``bounds`` finds the basin, then a bounded Brent search on
    log T refines it between the best grid point's neighbours; the better of the two is kept.

    Returns:
        TemperatureFit: ``at_bound`` and ``note`` say when T stopped on a bound, as it does when
        every validation infant is decided correctly and confidently (sharper is always better
        then, so T runs to the lower bound) or when the windows carry no information.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if aggregation == "vote":
        raise ValueError(
            "temperature scaling cannot calibrate 'vote' scores: vote fractions count the "
            "windows' arg-max classes, which no temperature changes; fit with 'mean'"
        )
    low, high = (float(b) for b in bounds)
    if not 0 < low < high or not math.isfinite(high):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds}")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(infant_window_probabilities):
        raise ValueError(
            f"{len(infant_window_probabilities)} infants but {len(labels)} labels; one label each"
        )
    stacked, starts, counts = _stack(infant_window_probabilities)
    log_probabilities = np.log(np.clip(stacked, PROBABILITY_FLOOR, None))

    def nll(log_temperature: float) -> float:
        scaled = softmax(log_probabilities / math.exp(log_temperature), axis=-1)
        return infant_nll(_aggregate(scaled, starts, counts, aggregation), labels)

    log_low, log_high = math.log(low), math.log(high)
    grid = np.linspace(log_low, log_high, GRID_POINTS)
    grid_nll = np.array([nll(t) for t in grid])
    best = int(np.argmin(grid_nll))
    best_log_t, best_nll = float(grid[best]), float(grid_nll[best])
    bracket = (float(grid[max(best - 1, 0)]), float(grid[min(best + 1, GRID_POINTS - 1)]))
    refined = minimize_scalar(nll, bounds=bracket, method="bounded", options={"xatol": 1e-6})
    if refined.success and refined.fun < best_nll:
        best_log_t, best_nll = float(refined.x), float(refined.fun)

    at_bound, note = None, ""
    if best_log_t - log_low < BOUND_TOLERANCE:
        at_bound = "lower"
        note = (
            f"T stopped on the lower bound {low:g}: sharper scores kept lowering the validation "
            "NLL, as when every validation infant is decided correctly and confidently; the "
            "fit says little about new infants, so consider keeping T = 1 or more infants"
        )
    elif log_high - best_log_t < BOUND_TOLERANCE:
        at_bound = "upper"
        note = (
            f"T stopped on the upper bound {high:g}: flatter scores kept lowering the "
            "validation NLL, as when the windows carry little information about the class"
        )
    return TemperatureFit(
        temperature=math.exp(best_log_t),
        nll_before=nll(0.0),
        nll_after=best_nll,
        n_infants=len(labels),
        aggregation=aggregation,
        at_bound=at_bound,
        note=note,
    )


def _checked_temperature(temperature: float) -> float:
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    return temperature


def _stack(
    infant_window_probabilities: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All infants' windows as one (sum W_i, K) array, with each infant's first row and count."""
    arrays = [np.asarray(a, dtype=np.float64) for a in infant_window_probabilities]
    if not arrays:
        raise ValueError("no infants given")
    num_classes = arrays[0].shape[-1]
    for i, array in enumerate(arrays):
        if array.ndim != 2 or array.shape[1] != num_classes or not len(array):
            raise ValueError(
                f"infant {i}: expected a (W, {num_classes}) array with W > 0, got {array.shape}"
            )
    counts = np.array([len(a) for a in arrays])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.concatenate(arrays), starts, counts


def _aggregate(
    scaled: np.ndarray, starts: np.ndarray, counts: np.ndarray, aggregation: str
) -> np.ndarray:
    """(N, K) infant scores from stacked scaled windows; the rules of ``aggregation.py``."""
    if aggregation == "mean":
        return np.add.reduceat(scaled, starts, axis=0) / counts[:, None]
    if aggregation == "vote":
        one_hot = np.eye(scaled.shape[1])[scaled.argmax(axis=1)]
        return np.add.reduceat(one_hot, starts, axis=0) / counts[:, None]
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


# -- calibration error -----------------------------------------------------------------------


def confidence_and_correct(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) confidence (top score) and (N,) correctness (top class == label) of (N, K) scores."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    return scores.max(axis=1), scores.argmax(axis=1) == labels


def reliability_table(confidences: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-width confidence bin over [0, 1]: its edges, count, mean confidence, accuracy.

    Bin m holds the confidences in (lower, upper]; the first also holds 0. An empty bin has
    ``count`` 0 and ``None`` for ``mean_confidence`` and ``accuracy``.
    """
    confidences, correct, index = _binned(confidences, correct, bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    for m in range(bins):
        members = index == m
        count = int(members.sum())
        table.append(
            {
                "lower": float(edges[m]),
                "upper": float(edges[m + 1]),
                "count": count,
                "mean_confidence": float(confidences[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return table


def expected_calibration_error(
    confidences: np.ndarray, correct: np.ndarray, bins: int = 10
) -> float:
    """Expected calibration error: sum over bins of (count / n) * |accuracy - mean confidence|.

    The bins are those of :func:`reliability_table` (equal width over [0, 1]); ``confidences``
    are top probabilities and ``correct`` says whether the top class was the label.
    """
    table = reliability_table(confidences, correct, bins)
    total = sum(row["count"] for row in table)
    return float(
        sum(
            row["count"] / total * abs(row["accuracy"] - row["mean_confidence"])
            for row in table
            if row["count"]
        )
    )


def _binned(
    confidences: np.ndarray, correct: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    confidences = np.asarray(confidences, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if len(confidences) != len(correct) or not len(confidences):
        raise ValueError(
            f"expected as many confidences as correctness flags, at least one; got "
            f"{len(confidences)} and {len(correct)}"
        )
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if np.any((confidences < 0) | (confidences > 1)) or not np.isfinite(confidences).all():
        raise ValueError("confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # side='left' puts a confidence equal to an edge into the bin that edge closes.
    index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    return confidences, correct, index


# -- agreement of one infant's windows -------------------------------------------------------


def window_agreement(window_probabilities: np.ndarray, decision_index: int) -> float:
    """Share of one infant's (W, K) windows whose top class is the infant's decided class."""
    window_probabilities = _windows(window_probabilities)
    return float((window_probabilities.argmax(axis=1) == int(decision_index)).mean())


def window_mutual_information(window_probabilities: np.ndarray) -> float:
    """Disagreement of one infant's (W, K) windows, in nats.

    The entropy of the mean window distribution minus the mean entropy of the windows (the
    mutual information between class and window): 0 when all windows are identical, at most
    log K, and large when confident windows point to different classes.
    """
    p = _windows(window_probabilities)
    p = p / p.sum(axis=1, keepdims=True)
    mean = p.mean(axis=0)
    entropy_of_mean = -xlogy(mean, mean).sum()
    mean_entropy = -xlogy(p, p).sum(axis=1).mean()
    return float(max(entropy_of_mean - mean_entropy, 0.0))


def agreement_threshold(
    agreements: np.ndarray, correct: np.ndarray | None = None, quantile: float = 0.05
) -> float:
    """The least window agreement worth a decision, from validation infants.

    Rule: the lower ``quantile`` of the agreements of the validation infants that were decided
    correctly (all given infants when ``correct`` is None), taken as an observed value
    (``np.quantile(..., method='lower')``). A new infant is decided when its agreement is at
    least the threshold and abstained on otherwise, so at most a share ``quantile`` of the
    correctly decided validation infants would have been turned away. With the few infants of a
    validation fold (under 1 / quantile + 1 correct ones) this is their lowest agreement: abstain
    only on less agreement than any correct validation infant showed. A quantile rather than
    the minimum keeps one oddly split correct infant in a large set from lowering the bar for
    all; an observed value rather than a margin on it needs no second constant. Without any
    correctly decided infant there is no evidence for a bar, and the threshold is 0 (always
    decide).
    """
    agreements = np.asarray(agreements, dtype=np.float64).ravel()
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must lie in [0, 1], got {quantile}")
    if correct is not None:
        correct = np.asarray(correct, dtype=bool).ravel()
        if len(correct) != len(agreements):
            raise ValueError(f"{len(agreements)} agreements but {len(correct)} correctness flags")
        agreements = agreements[correct]
    if not len(agreements):
        return 0.0
    return float(np.quantile(agreements, quantile, method="lower"))


def _windows(window_probabilities: np.ndarray) -> np.ndarray:
    array = np.asarray(window_probabilities, dtype=np.float64)
    if array.ndim != 2 or not len(array):
        raise ValueError(f"expected (W, K) window probabilities with W > 0, got {array.shape}")
    return array


# -- abstention ------------------------------------------------------------------------------


def coverage_accuracy(
    confidences: np.ndarray, correct: np.ndarray, abstained_mask: np.ndarray
) -> dict:
    """Coverage and accuracy when the infants in ``abstained_mask`` get no decision.

    Returns:
        dict: ``n`` (infants), ``n_decided``, ``coverage`` (share decided), ``accuracy_decided``
        (``None`` when none is decided), ``accuracy_all`` (every infant, abstentions included
        as decided), ``mean_confidence_decided`` (``None`` when none is decided).
    """
    confidences = np.asarray(confidences, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    decided = ~np.asarray(abstained_mask, dtype=bool).ravel()
    if not len(confidences) == len(correct) == len(decided) or not len(correct):
        raise ValueError("confidences, correct and abstained_mask need one entry per infant")
    n_decided = int(decided.sum())
    return {
        "n": len(correct),
        "n_decided": n_decided,
        "coverage": n_decided / len(correct),
        "accuracy_decided": float(correct[decided].mean()) if n_decided else None,
        "accuracy_all": float(correct.mean()),
        "mean_confidence_decided": float(confidences[decided].mean()) if n_decided else None,
    }


def risk_coverage_curve(
    confidences: np.ndarray, correct: np.ndarray
) -> list[tuple[float, float, float]]:
    """(threshold, coverage, accuracy) for deciding only infants with confidence >= threshold.

    One point per distinct confidence, highest threshold (least coverage) first, ending at
    coverage 1; accuracy is on the decided infants.
    """
    confidences = np.asarray(confidences, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if len(confidences) != len(correct) or not len(correct):
        raise ValueError("confidences and correct need one entry per infant, at least one")
    order = np.argsort(-confidences, kind="stable")
    sorted_confidences = confidences[order]
    right_so_far = np.cumsum(correct[order])
    # The last position of each distinct confidence: a threshold decides all its ties.
    last = np.flatnonzero(np.append(np.diff(sorted_confidences) != 0, True))
    n = len(correct)
    return [
        (float(sorted_confidences[i]), (i + 1) / n, float(right_so_far[i] / (i + 1))) for i in last
    ]
