"""The quality record of a preprocessed video, and the gate that decides "no infant found".

Pure numpy, no OpenMMLab imports. The segmentation and pose models give confident output on
anything (an empty cot, a caregiver's hand, moving texture), so whether an infant is in view is
decided from the evidence they leave, measured over the whole video:

* mask area: the fraction of each sampled frame the segmentation calls body, its median and its
  stability over time (coefficient of variation: a lying infant keeps its size, a hand or a toy
  passing by does not);
* mask steadiness: how far the box around the body moves from one sampled frame to the next,
  relative to its size (a lying infant stays where it lies; a swinging toy or a hand passing
  by does not, and what the model finds in moving texture jumps about);
* mask confidence: the median over frames of the mean body probability of the pixels called
  body (higher on an infant than on what the model finds in an empty cot or moving texture);
* mask compactness: the median share of the body pixels in the largest blob (one lying infant
  is one blob; what the model finds in moving texture is scattered);
* scene changes: the mean share of the pixels outside the body that change from one sampled
  frame to the next (a fixed camera over a lying infant sees still bedding; a sliding cloth, a
  caregiver's hand or a swinging toy change the pixels around whatever the model calls body),
  and the same inside the body;
* keypoint confidence: the median over keyframes of the mean keypoint score;
* brightness: the median grey level of the frames (0-255) before masking; a black or nearly
  black recording shows nothing, whatever the models say;
* skeleton plausibility: on each keyframe, limb-to-trunk length ratios within human infant
  ranges and left/right limbs of similar length (COCO-17 order);
* skeleton stability: how much the trunk (shoulders to hips) changes its length and moves
  between keyframes, relative to its length (a lying infant keeps its trunk; the pose a model
  finds in an empty cot or moving texture jumps from keyframe to keyframe).

Each figure has its own threshold; the optional "no-infant evidence" model combines them all
(a logistic regression fitted on validation videos with and without an infant, see
:func:`fit_gate`), which separates cases no single figure does.

The record lives in the cache's ``meta['quality']``: the figures, ``fallback`` (None or a reason
code from :data:`FALLBACK_REASONS`) and ``fallback_detail`` (what failed, with the values).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

FALLBACK_REASONS = {
    "no_infant": "no infant found in the video (quality gate)",
    "no_movement": "nothing moves in the video: not assessable",
    "alignment_failed": "too few usable pose estimates: the frames were not aligned",
}
#: A video in which at most this share of the body's and of the background's pixels change
#: between sampled frames (mean over the video) shows no movement. General Movements are
#: assessed on an awake, moving infant: on the 48 synthetic infants of the demo the body
#: changes by 0.009-0.34 (median 0.14); a still image or a sleeping infant stays near 0.
MAX_STILL_CHANGE = 0.002
# COCO-17 limb segments (from, to) in left/right pairs: upper arm, forearm, thigh, shank.
LIMB_PAIRS = (((5, 7), (6, 8)), ((7, 9), (8, 10)), ((11, 13), (12, 14)), ((13, 15), (14, 16)))
SHOULDERS, HIPS = (5, 6), (11, 12)


def limb_plausibility(
    keypoints: np.ndarray,
    min_ratio: float = 0.15,
    max_ratio: float = 1.5,
    max_asymmetry: float = 0.5,
) -> np.ndarray:
    """Whether each pose estimate looks like a human body.

    Args:
        keypoints: (M, K, 2) pixels, COCO-17 order (K >= 17).
        min_ratio, max_ratio: every limb segment must be this many trunk lengths long.
        max_asymmetry: ``|left - right| / (left + right)`` allowed for each segment pair.

    Returns:
        (M,) bool.
    """
    points = np.asarray(keypoints, np.float64)
    if points.ndim != 3 or points.shape[1] < 17:
        return np.zeros(len(points), bool)
    neck = points[:, list(SHOULDERS)].mean(1)
    crotch = points[:, list(HIPS)].mean(1)
    trunk = np.linalg.norm(crotch - neck, axis=1)
    plausible = trunk > 1e-6
    safe_trunk = np.where(plausible, trunk, 1.0)
    for (left_a, left_b), (right_a, right_b) in LIMB_PAIRS:
        left = np.linalg.norm(points[:, left_a] - points[:, left_b], axis=1)
        right = np.linalg.norm(points[:, right_a] - points[:, right_b], axis=1)
        for length in (left, right):
            ratio = length / safe_trunk
            plausible &= (ratio >= min_ratio) & (ratio <= max_ratio)
        plausible &= np.abs(left - right) <= max_asymmetry * (left + right + 1e-9)
    return plausible


def trunk_stability(keypoints: np.ndarray) -> tuple[float | None, float | None]:
    """How steady the trunk of the pose estimates is over the keyframes.

    Args:
        keypoints: (M, K, 2) pixels, COCO-17 order (K >= 17), in keyframe order.

    Returns:
        ``(trunk_length_cv, trunk_motion)``: std / mean of the trunk length (neck to crotch),
        and the median distance the trunk centre moves from one keyframe to the next divided
        by the median trunk length; None where fewer than two keyframes have a trunk.
    """
    points = np.asarray(keypoints, np.float64)
    if points.ndim != 3 or points.shape[1] < 17:
        return None, None
    neck = points[:, list(SHOULDERS)].mean(1)
    crotch = points[:, list(HIPS)].mean(1)
    length = np.linalg.norm(crotch - neck, axis=1)
    has_trunk = np.isfinite(length) & (length > 1e-6)
    if has_trunk.sum() < 2:
        return None, None
    length = length[has_trunk]
    centre = ((neck + crotch) / 2)[has_trunk]
    typical = float(np.median(length))
    steps = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    return float(length.std() / length.mean()), float(np.median(steps) / typical)


def box_motion(boxes: np.ndarray) -> float | None:
    """Median move of the box centre between consecutive frames, in box diagonals.

    Args:
        boxes: (N, 4) x1, y1, x2, y2 per sampled frame (NaN where no body was found).

    Returns:
        The median over consecutive pairs of found boxes of the centre distance divided by
        the median box diagonal; None where fewer than two frames have a box.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    found = np.isfinite(boxes).all(1)
    pairs = found[1:] & found[:-1]
    if not pairs.any():
        return None
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    diagonal = float(np.median(np.linalg.norm(boxes[found, 2:] - boxes[found, :2], axis=1)))
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)[pairs]
    return float(np.median(steps) / max(diagonal, 1.0))


def quality_figures(
    mask_areas: np.ndarray | None,
    keypoints: np.ndarray | None,
    keypoint_scores: np.ndarray | None,
    brightness: np.ndarray | None = None,
    mask_compactness: np.ndarray | None = None,
    mask_boxes: np.ndarray | None = None,
    mask_confidence: np.ndarray | None = None,
    background_changes: np.ndarray | None = None,
    body_changes: np.ndarray | None = None,
    usable_keyframe_fraction: float | None = None,
) -> dict:
    """Evidence that an infant is in view, as JSON-ready floats (None where not measured).

    Args:
        mask_areas: (N,) fraction of each sampled frame above the body threshold, or None
            without background removal.
        keypoints: (M, K, 2) keyframe pose estimates in source pixels, or None without pose.
        keypoint_scores: (M, K) their scores.
        brightness: (N,) mean grey level of each sampled frame, or None.
        mask_compactness: (N,) share of each frame's body pixels in its largest blob (NaN
            where no body was found), or None without background removal.
        mask_boxes: (N, 4) box around each frame's body (NaN where none), or None.
        mask_confidence: (N,) mean body probability of each frame's body pixels (NaN where
            none), or None.
        background_changes: (N,) share of the pixels outside the body that changed since
            the previous sampled frame (NaN where not measured), or None.
        body_changes: (N,) the same inside the body, or None.
        usable_keyframe_fraction: share of the keyframes whose pose estimate the alignment
            could use (from ``PoseAlignment``), or None without pose.
    """
    figures: dict = dict(
        brightness_median=None,
        mask_area_median=None,
        mask_area_cv=None,
        mask_compactness_median=None,
        mask_box_motion=None,
        mask_confidence_median=None,
        keypoint_score_median=None,
        plausible_skeleton_fraction=None,
        trunk_length_cv=None,
        trunk_motion=None,
        background_change=None,
        body_change=None,
        usable_keyframe_fraction=None,
    )
    if usable_keyframe_fraction is not None:
        figures["usable_keyframe_fraction"] = float(usable_keyframe_fraction)
    if brightness is not None and len(brightness):
        figures["brightness_median"] = float(np.median(brightness))
    if mask_areas is not None and len(mask_areas):
        areas = np.asarray(mask_areas, np.float64)
        mean = areas.mean()
        figures["mask_area_median"] = float(np.median(areas))
        figures["mask_area_cv"] = float(areas.std() / mean) if mean > 0 else None
    if mask_compactness is not None and np.isfinite(mask_compactness).any():
        figures["mask_compactness_median"] = float(np.nanmedian(mask_compactness))
    elif mask_areas is not None and len(mask_areas):
        figures["mask_compactness_median"] = 0.0  # no body in any frame
    if mask_confidence is not None and np.isfinite(mask_confidence).any():
        figures["mask_confidence_median"] = float(np.nanmedian(mask_confidence))
    for key, changes in (("background_change", background_changes), ("body_change", body_changes)):
        if changes is not None and np.isfinite(changes).any():
            figures[key] = float(np.nanmean(changes))
    if mask_boxes is not None and len(mask_boxes):
        figures["mask_box_motion"] = box_motion(mask_boxes)
    if keypoint_scores is not None and len(keypoint_scores):
        scores = np.asarray(keypoint_scores, np.float64)
        figures["keypoint_score_median"] = float(np.median(scores.mean(1)))
    if keypoints is not None and len(keypoints):
        figures["plausible_skeleton_fraction"] = float(limb_plausibility(keypoints).mean())
        figures["trunk_length_cv"], figures["trunk_motion"] = trunk_stability(keypoints)
    return figures


@dataclass(frozen=True)
class QualityGate:
    """Thresholds of the "no infant found" decision; None switches a check off.

    Args:
        min_brightness: the median grey level of the frames (0-255) must reach this.
        min_mask_area: the median body fraction of the frames must reach this.
        max_mask_area_cv: the body area must not vary more than this (std / mean).
        min_keypoint_score: the median keyframe mean keypoint score must reach this.
        min_plausible_skeleton: this fraction of keyframes must show a plausible skeleton.
        min_mask_compactness: the median share of the body in its largest blob must reach this.
        max_trunk_length_cv: the trunk length must not vary more than this over the keyframes.
        max_mask_box_motion: the box around the body must not move more than this many box
            diagonals from one sampled frame to the next (median).
        min_mask_confidence: the median mean body probability of the frames must reach this.
        max_background_change: the mean share of the background that changes from one sampled
            frame to the next must stay below this.
        max_trunk_motion: the trunk centre must not move more than this many trunk lengths
            from one keyframe to the next (median).
        no_infant_model: the fitted "no-infant evidence" model (see :func:`fit_gate`), a dict
            with ``features``, ``mean``, ``scale``, ``weights``, ``bias`` and ``max_logit``
            (and, for the record, the ``margin`` it includes): a video whose logit exceeds
            ``max_logit`` is flagged.
    """

    min_brightness: float | None = 8.0
    min_mask_area: float | None = 0.01
    max_mask_area_cv: float | None = 0.5
    min_keypoint_score: float | None = 0.3
    min_plausible_skeleton: float | None = 0.3
    min_mask_compactness: float | None = None
    no_infant_model: dict | None = None
    max_trunk_length_cv: float | None = None
    max_trunk_motion: float | None = None
    max_mask_box_motion: float | None = None
    min_mask_confidence: float | None = None
    max_background_change: float | None = None

    def failures(self, figures: dict) -> list[str]:
        """The checks ``figures`` (from :func:`quality_figures`) fail, each with its values."""
        checks = [(figure, getattr(self, name), side) for figure, name, side in GATE_CHECKS]
        failed = []
        for key, threshold, bad_side in checks:
            value = figures.get(key)
            if threshold is None or value is None:
                continue
            if (bad_side == "below" and value < threshold) or (
                bad_side == "above" and value > threshold
            ):
                failed.append(f"{key}={value:.3g} {bad_side} {threshold:g}")
        if self.no_infant_model is not None:
            model = self.no_infant_model
            logit = no_infant_logit(model, figures)
            if logit > model["max_logit"]:
                failed.append(f"no-infant evidence logit={logit:.3g} above {model['max_logit']:g}")
        return failed

    def to_dict(self) -> dict:
        return asdict(self)


def quality_record(
    figures: dict,
    gate: QualityGate | None,
    alignment_fallback: str | None,
    **context: object,
) -> dict:
    """The ``meta['quality']`` dict: figures, context (fps, duration...), fallback and why.

    "no_infant" takes precedence over "no_movement" (:func:`still_video`), and both over
    "alignment_failed": an empty scene fails alignment too.
    """
    failed = gate.failures(figures) if gate is not None else []
    fallback, detail = None, None
    still = still_video(figures)
    if failed:
        fallback, detail = "no_infant", "; ".join(failed)
    elif still:
        fallback, detail = "no_movement", still
    elif alignment_fallback:
        fallback, detail = "alignment_failed", alignment_fallback
    return dict(
        context,
        **figures,
        gate=gate.to_dict() if gate is not None else None,
        fallback=fallback,
        fallback_detail=detail,
    )


def still_video(figures: dict, max_change: float = MAX_STILL_CHANGE) -> str | None:
    """Why nothing moves in a video (None when something does or it was not measured).

    Both the body and the background must change by at most ``max_change`` (share of their
    pixels changing between sampled frames, mean over the video); where no body was found the
    background (the whole frame) alone decides. Unknown without background removal.
    """
    body, background = figures.get("body_change"), figures.get("background_change")
    if background is None or not math.isfinite(background) or background > max_change:
        return None
    if body is not None and (not math.isfinite(body) or body > max_change):
        return None
    shown = f"body_change={body:.3g} and " if body is not None else "no body found, "
    return (
        f"{shown}background_change={background:.3g}, at most {max_change:g}: nothing moves, "
        "and General Movements are assessed on an awake, moving infant"
    )


def fallback_of(meta: dict) -> str | None:
    """The fallback reason code of a cached video's meta (also of caches without a record)."""
    quality = meta.get("quality") or {}
    if "fallback" in quality:
        return quality["fallback"]
    return "alignment_failed" if (meta.get("alignment") or {}).get("fallback") else None


GATE_CHECKS = (  # (figure, QualityGate field, side that fails)
    ("brightness_median", "min_brightness", "below"),
    ("mask_area_median", "min_mask_area", "below"),
    ("mask_area_cv", "max_mask_area_cv", "above"),
    ("keypoint_score_median", "min_keypoint_score", "below"),
    ("plausible_skeleton_fraction", "min_plausible_skeleton", "below"),
    ("mask_compactness_median", "min_mask_compactness", "below"),
    ("trunk_length_cv", "max_trunk_length_cv", "above"),
    ("trunk_motion", "max_trunk_motion", "above"),
    ("mask_box_motion", "max_mask_box_motion", "above"),
    ("mask_confidence_median", "min_mask_confidence", "below"),
    ("background_change", "max_background_change", "above"),
)
# Figures the no-infant evidence model may combine (brightness stays a plain floor).
EVIDENCE_FIGURES = (
    "mask_area_median",
    "mask_area_cv",
    "mask_compactness_median",
    "keypoint_score_median",
    "plausible_skeleton_fraction",
    "trunk_length_cv",
    "trunk_motion",
    "mask_box_motion",
    "mask_confidence_median",
    "background_change",
    "body_change",
)
#: What the evidence model combines unless told otherwise: the five original figures and the
#: mask confidence. Chosen by 10-fold cross-validation on the gate sets v2 + v3 (840 infants,
#: 480 scenes, the demo chain) at the 99.8th-percentile threshold, with the per-figure checks
#: beside it (4 of 840 infants flagged with every set): 474 of 480 scenes caught, 471 with the
#: background change added, 473 with background and body change, 470 with the trunk figures.
#: The per-figure background-change check is what catches moving texture (461 of 480 without
#: it). The other figures are measured and recorded all the same.
DEFAULT_EVIDENCE_FIGURES = (*EVIDENCE_FIGURES[:5], "mask_confidence_median")
#: Figures that enter the evidence model as logarithms (positive, spread over decades).
LOG_FIGURES = (
    "mask_area_cv",
    "trunk_length_cv",
    "trunk_motion",
    "mask_box_motion",
    "background_change",
    "body_change",
)
MAX_AREA_CV = 10.0  # the cv of a mask empty in (nearly) every frame; cap of every variation


def evidence_features(figures: dict, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """The evidence model's inputs from quality figures -> float64 (len(names),).

    Areas and the :data:`LOG_FIGURES` enter as logarithms; a missing figure means the models
    found no body (area 0, variations ``MAX_AREA_CV``, compactness and scores 0).
    """
    values = []
    for name in names:
        value = figures.get(name)
        if name == "mask_area_median":
            values.append(np.log((value or 0.0) + 1e-3))
        elif name in LOG_FIGURES:
            value = MAX_AREA_CV if value is None else min(value, MAX_AREA_CV)
            values.append(np.log(value + 1e-2))
        else:
            values.append(0.0 if value is None else float(value))
    return np.asarray(values, np.float64)


def no_infant_logit(model: dict, figures: dict) -> float:
    """Logit of "no infant in view" under a fitted evidence model (see :func:`fit_gate`)."""
    standard = (evidence_features(figures, model["features"]) - model["mean"]) / model["scale"]
    return float(standard @ np.asarray(model["weights"]) + model["bias"])


def fit_gate(
    infant_figures: list[dict],
    margin: float = 0.25,
    empty_figures: list[dict] | None = None,
    regularisation: float = 1.0,
    evidence_margin: float = 0.0,
    infant_quantile: float = 1.0,
    evidence_figures: tuple[str, ...] | list[str] = DEFAULT_EVIDENCE_FIGURES,
) -> QualityGate:
    """Fit the gate on validation videos: per-figure thresholds and the evidence model.

    Each "below" threshold is the smallest infant value times ``1 - margin``; each "above"
    threshold the largest times ``1 + margin``. A figure no infant has switches its check off.
    With ``empty_figures`` (videos known to show no infant), a logistic regression on the
    standardised :func:`evidence_features` separates the two, and its threshold
    (``max_logit``) is the ``infant_quantile`` quantile of the infants' logits (1.0: the
    largest, every given infant passes) plus ``evidence_margin``.

    Args:
        infant_figures: :func:`quality_figures` of videos known to show an infant.
        margin: relative slack of the per-figure thresholds beyond the most extreme infant.
        empty_figures: :func:`quality_figures` of videos known to show no infant.
        regularisation: inverse L2 strength ``C`` of the logistic regression.
        evidence_margin: logit slack of the evidence threshold beyond the infant quantile.
        infant_quantile: quantile of the infants' logits the evidence threshold starts from;
            below 1 a few fitting infants are flagged, which keeps the threshold away from the
            single most extreme infant (an unstable figure) and catches more empty scenes.
    """
    if not 0.5 <= infant_quantile <= 1.0:
        raise ValueError(f"infant_quantile must lie in [0.5, 1], got {infant_quantile}")
    thresholds: dict = {}
    for figure, field_name, side in GATE_CHECKS:
        values = [f[figure] for f in infant_figures if f.get(figure) is not None]
        if not values:
            thresholds[field_name] = None
        elif side == "below":
            thresholds[field_name] = round(min(values) * (1 - margin), 4)
        else:
            thresholds[field_name] = round(max(values) * (1 + margin), 4)
    if empty_figures:
        unknown = set(evidence_figures) - set(EVIDENCE_FIGURES)
        if unknown:
            raise ValueError(
                f"unknown evidence figures {sorted(unknown)}; choose from {list(EVIDENCE_FIGURES)}"
            )
        thresholds["no_infant_model"] = _fit_evidence_model(
            infant_figures,
            empty_figures,
            regularisation,
            evidence_margin,
            infant_quantile,
            evidence_figures,
        )
    return QualityGate(**thresholds)


def _fit_evidence_model(
    infants: list[dict],
    empties: list[dict],
    regularisation: float,
    evidence_margin: float,
    infant_quantile: float = 1.0,
    evidence_figures: tuple[str, ...] | list[str] = DEFAULT_EVIDENCE_FIGURES,
) -> dict:
    from sklearn.linear_model import LogisticRegression

    names = [n for n in evidence_figures if any(f.get(n) is not None for f in infants)]
    if not names:
        raise ValueError("the infants have none of the evidence figures: nothing to fit")
    features = np.stack([evidence_features(f, names) for f in [*infants, *empties]])
    is_empty = np.r_[np.zeros(len(infants)), np.ones(len(empties))]
    mean, scale = features.mean(0), features.std(0)
    scale[scale < 1e-9] = 1.0
    classifier = LogisticRegression(C=regularisation, class_weight="balanced")
    classifier.fit((features - mean) / scale, is_empty)
    model = dict(
        features=names,
        mean=[round(float(v), 6) for v in mean],
        scale=[round(float(v), 6) for v in scale],
        weights=[round(float(v), 6) for v in classifier.coef_[0]],
        bias=round(float(classifier.intercept_[0]), 6),
    )
    logits = np.array([no_infant_logit(model, f) for f in infants])
    start = float(np.quantile(logits, infant_quantile, method="higher"))
    model["max_logit"] = round(start + evidence_margin + 1e-6, 6)
    model["margin"] = float(evidence_margin)
    model["infant_quantile"] = float(infant_quantile)
    return model
