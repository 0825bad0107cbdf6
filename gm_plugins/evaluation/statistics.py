"""Statistics for comparing classifiers on the same test infants.

Every method predicts one class per test infant and training seed. Two kinds of percentile
bootstrap:

- one level (:func:`infant_bootstrap`, :func:`paired_bootstrap`): a resample draws N infants with
  replacement, and every seed (and both methods) is scored on the same drawn infants, so the
  interval reflects which infants happened to be tested, not which seeds trained;
- two levels (:func:`seed_infant_bootstrap`, :func:`paired_seed_infant_bootstrap`): a resample
  also draws S seeds with replacement from a method's S seeds, then scores them on the drawn
  infants, so the interval covers training-seed variance too. Two methods are paired by infant,
  and by seed where both have the same seeds. With one seed it is the one-level bootstrap
  (same resamples, same result). With few seeds the seed level is coarse: resampling S values
  gives a variance (S - 1) / S of theirs, so with 3 seeds it undercounts the seed part by a third.

The bootstraps are vectorised: a resample is a row of infant multiplicities (how often each
infant was drawn), and its confusion counts are that row times a one-hot table of the infants'
(true, predicted) classes, one matrix product for all resamples of a chunk.

Also here: accuracy and Matthews correlation of batched confusion matrices, the multinomial
bootstrap of a pooled confusion matrix (the backbone leaderboard's), McNemar's exact test of two
single-seed predictions, and a bar chart with confidence-interval whiskers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

#: Bootstrap resamples, unless a caller asks for other.
RESAMPLES = 10000
#: Two-sided coverage of the intervals.
CI_LEVEL = 0.95
#: At most this many (resample, infant) entries per chunk of a bootstrap: bounds the memory.
CHUNK_ENTRIES = 1 << 21

__all__ = [
    "CI_LEVEL",
    "RESAMPLES",
    "accuracy_from_confusion",
    "bootstrap_intervals",
    "infant_bootstrap",
    "mcc_from_confusion",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_seed_infant_bootstrap",
    "percentile_interval",
    "plot_bars_with_ci",
    "seed_infant_bootstrap",
]


# -- metrics of confusion matrices -----------------------------------------------------------


def mcc_from_confusion(matrices: np.ndarray) -> np.ndarray:
    """Matthews correlation of (..., K, K) confusion matrices (rows: truth), shape (...).

    The K-class form (Gorodkin's R_K) sklearn's ``matthews_corrcoef`` computes, 0 where it is
    undefined (only one class true or predicted), as sklearn returns; batched, because sklearn
    takes one label vector per call (milliseconds each, seconds for a bootstrap).
    """
    m = np.asarray(matrices, np.float64)
    total = m.sum(axis=(-2, -1))
    correct = np.trace(m, axis1=-2, axis2=-1)
    true, predicted = m.sum(axis=-1), m.sum(axis=-2)
    covariance = correct * total - (true * predicted).sum(axis=-1)
    spread = (total**2 - (predicted**2).sum(axis=-1)) * (total**2 - (true**2).sum(axis=-1))
    safe = np.where(spread > 0, spread, 1.0)
    return np.where(spread > 0, covariance / np.sqrt(safe), 0.0)


def accuracy_from_confusion(matrices: np.ndarray) -> np.ndarray:
    """Accuracy of (..., K, K) confusion matrices, shape (...)."""
    m = np.asarray(matrices, np.float64)
    return np.trace(m, axis1=-2, axis2=-1) / m.sum(axis=(-2, -1))


def percentile_interval(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``values`` (R,)."""
    tail = (1 - level) / 2
    low, high = np.quantile(np.asarray(values, np.float64), [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    pooled: np.ndarray,
    infants: int,
    resamples: int = RESAMPLES,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of accuracy and MCC from a pooled (K, K) confusion matrix.

    Each resample draws ``infants`` decisions with replacement from ``pooled`` (for instance the
    confusion matrix of every fold's infant decisions of a repeated cross-validation): as many
    as there are infants, not decisions, so repeats do not pass for more infants. Use
    :func:`infant_bootstrap` when the decisions of each infant are known.

    Returns:
        ``{'accuracy': (low, high), 'mcc': (low, high)}``.
    """
    pooled = np.asarray(pooled, np.int64)
    shape = pooled.shape
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(infants, pooled.ravel() / pooled.sum(), size=resamples)
    matrices = draws.reshape(resamples, *shape)
    return {
        "accuracy": percentile_interval(accuracy_from_confusion(matrices), level),
        "mcc": percentile_interval(mcc_from_confusion(matrices), level),
    }


# -- bootstraps over infants -----------------------------------------------------------------


def _as_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty (N,) array, not shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, not {labels.dtype}")
    return labels.astype(np.int64)


def _as_predictions(predictions: np.ndarray, num_infants: int, name: str) -> np.ndarray:
    """``predictions`` as an (S, N) int64 array; an (N,) one is one seed."""
    predictions = np.asarray(predictions)
    if predictions.ndim == 1:
        predictions = predictions[None]
    if predictions.ndim != 2 or predictions.shape[0] == 0 or predictions.shape[1] != num_infants:
        raise ValueError(
            f"{name} must have shape (seeds, {num_infants}) or ({num_infants},), "
            f"not {predictions.shape}"
        )
    if not np.issubdtype(predictions.dtype, np.integer):
        raise ValueError(f"{name} must be integers, not {predictions.dtype}")
    return predictions.astype(np.int64)


def _check_classes(values: np.ndarray, num_classes: int, name: str) -> None:
    if values.min() < 0 or values.max() >= num_classes:
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}")


def _resample_weights(num_infants: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks (R_chunk, N) of infant multiplicities, float64: row r counts how often each
    infant was drawn in resample r (N draws with replacement; every row sums to N).

    Drawn as index matrices, so equal ``num_infants``, ``resamples`` and ``seed`` give the same
    resamples in every bootstrap here.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be positive, not {resamples}")
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_ENTRIES // num_infants)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, num_infants, size=(rows, num_infants))
        flat = drawn + (np.arange(rows) * num_infants)[:, None]
        counts = np.bincount(flat.ravel(), minlength=rows * num_infants)
        yield counts.reshape(rows, num_infants).astype(np.float64)


_METRICS = {"accuracy": accuracy_from_confusion, "mcc": mcc_from_confusion}


def _seed_metrics(
    labels: np.ndarray, predictions: np.ndarray, num_classes: int, resamples: int, seed: int
) -> tuple[dict[str, float | int], Iterator[dict[str, np.ndarray]]]:
    """Point figures of each seed on all infants, and chunks of each seed's metrics on the
    resampled infants: ``{'accuracy': (R_chunk, S), 'mcc': (R_chunk, S)}``."""
    labels = _as_labels(labels)
    num_infants = labels.size
    predictions = _as_predictions(predictions, num_infants, "predictions")
    _check_classes(labels, num_classes, "labels")
    _check_classes(predictions, num_classes, "predictions")
    num_seeds = predictions.shape[0]
    cells = num_classes * num_classes
    # (N, S * K * K): one-hot of each infant's (true, predicted) cell, seed by seed.
    codes = labels[None] * num_classes + predictions + (np.arange(num_seeds) * cells)[:, None]
    onehot = np.zeros((num_infants, num_seeds * cells))
    onehot[np.arange(num_infants)[None], codes] = 1.0

    full = onehot.sum(axis=0).reshape(num_seeds, num_classes, num_classes)
    summary: dict[str, float | int] = {}
    for metric, of_confusion in _METRICS.items():
        per_seed = of_confusion(full)
        summary[metric] = float(per_seed.mean())
        summary[f"{metric}_sd"] = float(per_seed.std(ddof=1)) if num_seeds > 1 else math.nan
    summary.update(num_infants=num_infants, num_seeds=num_seeds, resamples=resamples)

    def chunks() -> Iterator[dict[str, np.ndarray]]:
        for weights in _resample_weights(num_infants, resamples, seed):
            matrices = (weights @ onehot).reshape(-1, num_seeds, num_classes, num_classes)
            yield {metric: of(matrices) for metric, of in _METRICS.items()}

    return summary, chunks()


def _seed_weights(num_seeds: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, S) seed multiplicities over S, float64: row r weights each seed by how often it was
    drawn in resample r (S draws with replacement) divided by S, so a row sums to 1."""
    counts = rng.multinomial(num_seeds, np.full(num_seeds, 1 / num_seeds), size=rows)
    return counts / num_seeds


def _seed_rng(seed: int) -> np.random.Generator:
    """The seed level's random stream, apart from the infants' (so that the infant resamples
    are those of the one-level bootstrap with the same ``seed``)."""
    return np.random.default_rng([seed, 1])


def infant_bootstrap(
    labels: np.ndarray,
    predictions: np.ndarray,
    num_classes: int = 3,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict[str, float | int]:
    """Accuracy and MCC of one method's seeds on the same infants, with bootstrap intervals
    over infants only (one level: the seeds are kept as they are).

    Args:
        labels: (N,) true classes, 0..num_classes-1.
        predictions: (S, N) predicted classes of S training seeds; (N,) is one seed.
        num_classes: K, the number of classes.
        resamples: bootstrap resamples R.
        seed: seed of the resampling (equal seeds: equal results).
        level: coverage of the percentile intervals.

    Returns:
        ``accuracy`` and ``mcc``: the mean over seeds of the metric on all N infants;
        ``accuracy_sd`` and ``mcc_sd``: their sample sd over seeds (ddof 1; NaN for one seed);
        ``accuracy_ci_low/high`` and ``mcc_ci_low/high``: percentile bootstrap interval of the
        seed mean, every seed scored on the same resampled infants; ``num_infants``,
        ``num_seeds``, ``resamples``, ``levels`` (1) and ``level``. The MCC is sklearn's
        ``matthews_corrcoef``, 0 where undefined.
    """
    summary, chunks = _seed_metrics(labels, predictions, num_classes, resamples, seed)
    values: dict[str, list[np.ndarray]] = {metric: [] for metric in _METRICS}
    for chunk in chunks:
        for metric, per_seed in chunk.items():
            values[metric].append(per_seed.mean(axis=1))
    return _with_intervals(summary, values, level, levels=1)


def seed_infant_bootstrap(
    labels: np.ndarray,
    predictions: np.ndarray,
    num_classes: int = 3,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict[str, float | int]:
    """As :func:`infant_bootstrap`, with a two-level bootstrap: each resample draws S of the
    S seeds with replacement, then N infants with replacement, and takes the mean over the
    drawn seeds of each one's metric on the drawn infants. ``levels`` is 2."""
    summary, chunks = _seed_metrics(labels, predictions, num_classes, resamples, seed)
    rng = _seed_rng(seed)
    values: dict[str, list[np.ndarray]] = {metric: [] for metric in _METRICS}
    for chunk in chunks:
        weights = _seed_weights(int(summary["num_seeds"]), len(chunk["accuracy"]), rng)
        for metric, per_seed in chunk.items():
            values[metric].append((weights * per_seed).sum(axis=1))
    return _with_intervals(summary, values, level, levels=2)


def _with_intervals(
    summary: dict[str, float | int], values: dict[str, list[np.ndarray]], level: float, levels: int
) -> dict[str, float | int]:
    for metric, chunks in values.items():
        low, high = percentile_interval(np.concatenate(chunks), level)
        summary.update({f"{metric}_ci_low": low, f"{metric}_ci_high": high})
    summary.update(levels=levels, level=level)
    return summary


def paired_bootstrap(
    labels: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict[str, float | int]:
    """Seed-averaged accuracy of method A minus that of method B, bootstrapped over infants.

    Both methods are scored on the same resampled infants, so what they get right together
    cancels. With d* the R resampled differences, the two-sided p-value of "difference 0" is::

        p = min(1, 2 * (1 + min(#{d* <= 0}, #{d* >= 0})) / (1 + R))

    (the percentile p-value with the usual +1 correction, so it is never 0: at least 2 / (R + 1)).
    Methods that are right on the same infants have every d* = 0, hence p = 1.

    Args:
        labels: (N,) true classes.
        predictions_a: (Sa, N) predicted classes of A's seeds; (N,) is one seed.
        predictions_b: (Sb, N) predicted classes of B's seeds; Sb may differ from Sa.
        resamples: bootstrap resamples R.
        seed: seed of the resampling.
        level: coverage of the percentile interval.

    Returns:
        ``difference`` (on all infants), ``ci_low``, ``ci_high``, ``p_value``, ``resamples``.
    """
    labels = _as_labels(labels)
    num_infants = labels.size
    right_a = (_as_predictions(predictions_a, num_infants, "predictions_a") == labels).mean(0)
    right_b = (_as_predictions(predictions_b, num_infants, "predictions_b") == labels).mean(0)
    gap = (right_a - right_b) / num_infants  # (N,): each infant's share of the difference
    differences = np.concatenate(
        [weights @ gap for weights in _resample_weights(num_infants, resamples, seed)]
    )
    return _difference_summary(float(gap.sum()), differences, resamples, level)


def _difference_summary(
    difference: float, differences: np.ndarray, resamples: int, level: float
) -> dict[str, float | int]:
    """The point difference, its percentile interval and the bootstrap p-value of 0."""
    # Identical per-infant scores give d* = 0 exactly, but rounding in the sums can leave
    # +-1e-17 where the scores differ yet balance out; a tolerance keeps those at 0.
    tolerance = 1e-12
    below = int(np.count_nonzero(differences <= tolerance))
    above = int(np.count_nonzero(differences >= -tolerance))
    low, high = percentile_interval(differences, level)
    return {
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "p_value": min(1.0, 2 * (1 + min(below, above)) / (1 + resamples)),
        "resamples": resamples,
    }


def paired_seed_infant_bootstrap(
    labels: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    seeds_a: Sequence[int] | None = None,
    seeds_b: Sequence[int] | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict[str, float | int | bool]:
    """As :func:`paired_bootstrap`, with a two-level bootstrap: each resample draws the infants
    (the same for both methods) and each method's seeds with replacement.

    The seeds are paired (the same seed numbers drawn for both methods) where both methods
    have the same seeds (``seeds_a`` and ``seeds_b`` equal as sets); otherwise each method's
    seeds are drawn on their own. With one seed each it is :func:`paired_bootstrap`.

    Args:
        labels: (N,) true classes.
        predictions_a: (Sa, N) predicted classes of A's seeds; (N,) is one seed.
        predictions_b: (Sb, N) predicted classes of B's seeds.
        seeds_a, seeds_b: the training seeds of the rows of ``predictions_a`` and
            ``predictions_b`` (None: not paired by seed).
        resamples: bootstrap resamples R.
        seed: seed of the resampling.
        level: coverage of the percentile interval.

    Returns:
        ``difference`` (seed-averaged accuracy of A minus B on all infants), ``ci_low``,
        ``ci_high``, ``p_value`` (as :func:`paired_bootstrap`'s), ``resamples``,
        ``seeds_paired`` and ``levels`` (2).
    """
    labels = _as_labels(labels)
    num_infants = labels.size
    right_a = _as_predictions(predictions_a, num_infants, "predictions_a") == labels
    right_b = _as_predictions(predictions_b, num_infants, "predictions_b") == labels
    paired = _seed_pairing(seeds_a, seeds_b, len(right_a), len(right_b))
    if paired is not None:
        right_b = right_b[paired]
    right_a, right_b = right_a.astype(np.float64).T, right_b.astype(np.float64).T  # (N, S)
    rng = _seed_rng(seed)
    differences = []
    for weights in _resample_weights(num_infants, resamples, seed):
        accuracy_a = weights @ right_a / num_infants  # (R_chunk, Sa)
        accuracy_b = weights @ right_b / num_infants
        seeds_weight_a = _seed_weights(right_a.shape[1], len(weights), rng)
        if paired is not None:
            seeds_weight_b = seeds_weight_a
        else:
            seeds_weight_b = _seed_weights(right_b.shape[1], len(weights), rng)
        differences.append(
            (seeds_weight_a * accuracy_a).sum(axis=1) - (seeds_weight_b * accuracy_b).sum(axis=1)
        )
    difference = float(right_a.mean() - right_b.mean())
    summary = _difference_summary(difference, np.concatenate(differences), resamples, level)
    return {**summary, "seeds_paired": paired is not None, "levels": 2}


def _seed_pairing(
    seeds_a: Sequence[int] | None, seeds_b: Sequence[int] | None, count_a: int, count_b: int
) -> list[int] | None:
    """The order of B's rows that matches A's seeds, or None where the seeds are not the same."""
    for name, seeds, count in (("seeds_a", seeds_a, count_a), ("seeds_b", seeds_b, count_b)):
        if seeds is not None and (len(seeds) != count or len(set(seeds)) != count):
            raise ValueError(f"{name} must name {count} distinct seeds, not {list(seeds)}")
    if seeds_a is None or seeds_b is None or set(seeds_a) != set(seeds_b):
        return None
    row_b = {s: row for row, s in enumerate(seeds_b)}
    return [row_b[s] for s in seeds_a]


def mcnemar_exact(
    labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray
) -> dict[str, float | int]:
    """McNemar's exact test of two single-seed classifiers on the same infants.

    Args:
        labels: (N,) true classes.
        predictions_a: (N,) predicted classes of A.
        predictions_b: (N,) predicted classes of B.

    Returns:
        ``a_only`` (infants A gets right and B wrong), ``b_only`` (the reverse), ``both_right``,
        ``both_wrong``, ``num_infants`` and ``p_value``: the two-sided exact binomial test of
        ``a_only`` out of ``a_only + b_only`` at 1/2 (``scipy.stats.binomtest``); 1.0 without
        discordant infants.
    """
    from scipy.stats import binomtest

    labels = _as_labels(labels)
    num_infants = labels.size
    right = []
    for name, predictions in (("predictions_a", predictions_a), ("predictions_b", predictions_b)):
        predictions = np.asarray(predictions)
        if predictions.shape != labels.shape:
            raise ValueError(f"{name} must have shape {labels.shape}, not {predictions.shape}")
        right.append(predictions == labels)
    right_a, right_b = right
    a_only = int(np.count_nonzero(right_a & ~right_b))
    b_only = int(np.count_nonzero(right_b & ~right_a))
    discordant = a_only + b_only
    p_value = float(binomtest(a_only, discordant, 0.5).pvalue) if discordant else 1.0
    return {
        "a_only": a_only,
        "b_only": b_only,
        "both_right": int(np.count_nonzero(right_a & right_b)),
        "both_wrong": int(np.count_nonzero(~right_a & ~right_b)),
        "num_infants": num_infants,
        "p_value": p_value,
    }


# -- figures ---------------------------------------------------------------------------------


def plot_bars_with_ci(
    path: str | os.PathLike,
    names: Sequence[str],
    values: Sequence[float],
    ci_low: Sequence[float],
    ci_high: Sequence[float],
    ylabel: str,
    title: str,
    chance: float | None = None,
    highlight: int | None = None,
) -> Path:
    """Horizontal bars of ``values`` with asymmetric whiskers to ``ci_low`` and ``ci_high``.

    One bar per name, the first at the top, labelled with its value. ``ylabel`` names the
    quantity (it labels the value axis, horizontal here); ``chance`` draws a dashed line there;
    bar ``highlight`` (an index into ``names``) gets another colour. Written atomically as an
    image in the format of ``path``'s suffix (PNG by default); returns ``path``.
    """
    from gm_plugins.utils.plotting import pyplot, save_figure

    names = [str(name) for name in names]
    count = len(names)
    value, low, high = (np.asarray(a, np.float64) for a in (values, ci_low, ci_high))
    if not count or any(a.shape != (count,) for a in (value, low, high)):
        raise ValueError("names, values, ci_low and ci_high must be non-empty, of equal length")
    if highlight is not None and not -count <= highlight < count:
        raise ValueError(f"highlight {highlight} is not an index of {count} bars")

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(10.5, 1.2 + 0.38 * count), dpi=120)
    positions = np.arange(count)
    colours = ["tab:blue"] * count
    if highlight is not None:
        colours[highlight] = "tab:orange"
    whiskers = np.nan_to_num(np.stack([value - low, high - value]).clip(min=0))
    axes.barh(positions, value, 0.65, color=colours, xerr=whiskers, capsize=3)
    axes.set_yticks(positions, names, fontsize=8)
    axes.invert_yaxis()

    shown = np.concatenate([value, low, high, [0.0] if chance is None else [0.0, chance]])
    shown = shown[np.isfinite(shown)]
    left, right = float(shown.min()), float(shown.max())
    span = right - left or 1.0
    axes.set_xlim(left - 0.03 * span, right + 0.12 * span)  # room for the value labels
    for position, bar_value, bar_high in zip(positions, value, high, strict=True):
        if np.isfinite(bar_value):
            end = bar_high if np.isfinite(bar_high) else bar_value
            axes.annotate(
                f"{bar_value:.3f}", (max(end, bar_value), position), xytext=(4, 0),
                textcoords="offset points", va="center", fontsize=7,
            )  # fmt: skip
    if left < 0:
        axes.axvline(0, color="black", linewidth=0.6)
    if chance is not None:
        axes.axvline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
        axes.legend(loc="best", fontsize=7)
    axes.set_xlabel(f"{ylabel} (whiskers: confidence interval)")
    axes.set_title(title)
    return save_figure(figure, path)
