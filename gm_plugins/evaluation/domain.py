"""The training domain of a classifier, as ranges of the preprocessing quality figures.

A bundle records, for every quality figure (:mod:`gm_plugins.preprocess.quality`), the values
it took on the infants the classifier was validated on; a new video whose figures fall outside
those ranges (on the side that means worse evidence) is outside what the models were trained
and validated on, and its decision cannot be trusted however confident the classifier is: a
real recording given to models trained on synthetic infants, a camera angle never seen, a
video in which the pose model finds no plausible skeleton.

Each range is the validation infants' [min, max] widened by ``margin`` times its width (and by
an absolute floor, so that a figure every validation infant shares exactly does not refuse the
next infant for a rounding difference), clipped to the figure's natural bounds. The margin is
chosen on the validation infants themselves (:func:`choose_margin`): the smallest at which
leave-one-out lets (nearly) every one of them in, so that a fold of a few infants gets a wide
domain and a large validation set a tight one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: Figures checked against the domain, and the side(s) on which a value is out of it: 'below'
#: (less evidence than any validation infant), 'above' or 'both'.
DOMAIN_FIGURES: dict[str, str] = {
    "brightness_median": "both",
    "mask_area_median": "both",
    "mask_area_cv": "above",
    "mask_compactness_median": "below",
    "mask_box_motion": "above",
    "mask_confidence_median": "below",
    "keypoint_score_median": "below",
    "plausible_skeleton_fraction": "below",
    "trunk_length_cv": "above",
    "trunk_motion": "above",
    "background_change": "above",
    "body_change": "both",
    "usable_keyframe_fraction": "below",
}
#: Figures that are shares (bounded by [0, 1]).
FRACTIONS = (
    "mask_area_median",
    "mask_compactness_median",
    "mask_confidence_median",
    "keypoint_score_median",
    "plausible_skeleton_fraction",
    "background_change",
    "body_change",
    "usable_keyframe_fraction",
)
DEFAULT_MARGIN = 0.25
#: The smallest widening of a range on each side, in the figure's units.
ABSOLUTE_FLOOR = {"brightness_median": 5.0}
DEFAULT_FLOOR = 0.01


def usable_keyframe_fraction(meta: Mapping) -> float | None:
    """Share of the keyframes whose pose the alignment used, from a cached video's meta.

    Read from ``meta['quality']`` when recorded, else derived from the alignment record (the
    number of estimates aggregated over the number of keyframes); None without pose.
    """
    quality = meta.get("quality") or {}
    if quality.get("usable_keyframe_fraction") is not None:
        return float(quality["usable_keyframe_fraction"])
    alignment = meta.get("alignment") or {}
    body = alignment.get("body_frame")
    keyframes = len(meta.get("keypoint_positions") or ())
    if not keyframes or not body or alignment.get("mode") == "letterbox":
        return None
    first = body[0] if isinstance(body, list) else body
    if first.get("source") == "fallback":
        return 0.0
    return min(1.0, float(first.get("num_estimates", 0)) / keyframes)


def video_figures(meta: Mapping) -> dict[str, float | None]:
    """The domain figures of a cached video (None where not measured)."""
    quality = meta.get("quality") or {}
    figures: dict[str, float | None] = {}
    for name in DOMAIN_FIGURES:
        value = quality.get(name)
        figures[name] = None if value is None else float(value)
    figures["usable_keyframe_fraction"] = usable_keyframe_fraction(meta)
    return figures


def fit_domain(
    validation_figures: Sequence[Mapping[str, float | None]], margin: float = DEFAULT_MARGIN
) -> dict[str, dict]:
    """The range of each figure over the validation infants.

    Returns:
        figure -> dict(side, low, high, n, min, median, max): ``low``/``high`` are None on the
        side that is not checked; a figure no validation infant has is left out.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    domain: dict[str, dict] = {}
    for name, side in DOMAIN_FIGURES.items():
        values = np.array(
            [float(f[name]) for f in validation_figures if f.get(name) is not None], np.float64
        )
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        smallest, largest = float(values.min()), float(values.max())
        slack = max(margin * (largest - smallest), ABSOLUTE_FLOOR.get(name, DEFAULT_FLOOR))
        low, high = smallest - slack, largest + slack
        if name in FRACTIONS:
            low, high = max(low, 0.0), min(high, 1.0)
        domain[name] = dict(
            side=side,
            low=round(low, 6) if side in ("below", "both") else None,
            high=round(high, 6) if side in ("above", "both") else None,
            n=len(values),
            min=round(smallest, 6),
            median=round(float(np.median(values)), 6),
            max=round(largest, 6),
        )
    return domain


#: Margins :func:`choose_margin` tries, in range widths.
MARGINS = (0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)


def choose_margin(
    validation_figures: Sequence[Mapping[str, float | None]],
    max_flagged: float = 0.05,
    margins: Sequence[float] = MARGINS,
) -> tuple[float, float]:
    """The smallest margin at which leave-one-out flags at most ``max_flagged`` of the
    validation infants.

    Each validation infant is checked against the domain fitted on the others: an infant the
    models were made for, but that the others do not cover, is what the margin must let in.
    With N infants, at most ``floor(max_flagged * N)`` may be flagged (0 with fewer than 20).

    Returns:
        (margin, share of the infants flagged at it); the largest margin tried when none
        qualifies.
    """
    figures = list(validation_figures)
    if len(figures) < 2:
        return float(margins[-1]), 0.0
    allowed = int(np.floor(max_flagged * len(figures) + 1e-9))
    share = 0.0
    for margin in margins:
        flagged = sum(
            bool(outside_domain(fit_domain(figures[:i] + figures[i + 1 :], margin), figure))
            for i, figure in enumerate(figures)
        )
        share = flagged / len(figures)
        if flagged <= allowed:
            return float(margin), share
    return float(margins[-1]), share


def outside_domain(domain: Mapping[str, Mapping], figures: Mapping[str, float | None]) -> list[str]:
    """The figures of a video outside the domain, each with its value and the range; a figure
    of the domain that the video lacks (None or not finite) counts as outside."""
    problems = []
    for name, rule in domain.items():
        value = figures.get(name)
        seen = f"validation infants: {rule['min']:.3g}-{rule['max']:.3g}"
        if value is None or not math.isfinite(value):
            # every validation infant had it: a video without it lacks that evidence
            problems.append(f"{name} not measured ({seen})")
            continue
        low, high = rule.get("low"), rule.get("high")
        if low is not None and value < low:
            problems.append(f"{name}={value:.3g} below {low:.3g} ({seen})")
        elif high is not None and value > high:
            problems.append(f"{name}={value:.3g} above {high:.3g} ({seen})")
    return problems
