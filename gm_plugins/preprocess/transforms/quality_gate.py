"""The "no infant found" gate as the last step of a preprocessing chain."""

from __future__ import annotations

from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from gm_plugins.preprocess.quality import QualityGate, quality_figures, quality_record


@TRANSFORMS.register_module()
class InfantPresenceGate(BaseTransform):
    """Decide from the models' evidence whether an infant is in view; record the quality.

    See :mod:`gm_plugins.preprocess.quality` for the figures. A video that fails a check gets
    the fallback ``'no_infant'`` (kept in the cache, left out of training by ``GMDataset``'s
    ``exclude_fallbacks``); one that passes but could not be aligned gets
    ``'alignment_failed'``. A threshold set to None switches its check off.

    Required keys:
        - frame_inds, fps, sample_fps
        - body_areas, body_compactness, body_confidence, body_boxes, frame_brightness,
          background_changes, body_changes (optional, from ``BackgroundRemoval``)
        - pose_keypoints, pose_scores, alignment_fallback (optional, from ``PoseAlignment``)

    Added keys:
        - quality (dict: the figures, ``fallback`` and ``fallback_detail``)

    Args:
        min_brightness (float | None): median grey level (0-255) of the frames must reach this.
            Defaults to 8.
        min_mask_area (float | None): median body fraction of the frames must reach this.
            Defaults to 0.01.
        max_mask_area_cv (float | None): body area variation (std / mean) must stay below.
            Defaults to 0.5.
        min_keypoint_score (float | None): median keyframe mean keypoint score must reach this.
            Defaults to 0.3.
        min_plausible_skeleton (float | None): fraction of keyframes with a plausible skeleton
            must reach this. Defaults to 0.3.
        min_mask_compactness (float | None): median share of the body in its largest blob
            must reach this. Defaults to None.
        no_infant_model (dict | None): the fitted evidence model (``gate.json`` of
            ``tools/analysis_tools/evaluate_quality_gate.py``); flags a video whose logit is above
            its ``max_logit``. Defaults to None.
        max_trunk_length_cv (float | None): the trunk length (std / mean over the keyframes)
            must vary less than this. Defaults to None.
        max_trunk_motion (float | None): the median move of the trunk centre between
            keyframes, in trunk lengths, must stay below this. Defaults to None.
        max_mask_box_motion (float | None): the median move of the body box between sampled
            frames, in box diagonals, must stay below this. Defaults to None.
        min_mask_confidence (float | None): the median mean body probability must reach
            this. Defaults to None.
        max_background_change (float | None): the mean share of the background that changes
            between sampled frames must stay below this. Defaults to None.
    """

    def __init__(
        self,
        min_brightness: float | None = 8.0,
        min_mask_area: float | None = 0.01,
        max_mask_area_cv: float | None = 0.5,
        min_keypoint_score: float | None = 0.3,
        min_plausible_skeleton: float | None = 0.3,
        min_mask_compactness: float | None = None,
        no_infant_model: dict | None = None,
        max_trunk_length_cv: float | None = None,
        max_trunk_motion: float | None = None,
        max_mask_box_motion: float | None = None,
        min_mask_confidence: float | None = None,
        max_background_change: float | None = None,
    ) -> None:
        self.gate: QualityGate | None = QualityGate(
            min_brightness=min_brightness,
            min_mask_area=min_mask_area,
            max_mask_area_cv=max_mask_area_cv,
            min_keypoint_score=min_keypoint_score,
            min_plausible_skeleton=min_plausible_skeleton,
            min_mask_compactness=min_mask_compactness,
            no_infant_model=no_infant_model,
            max_trunk_length_cv=max_trunk_length_cv,
            max_trunk_motion=max_trunk_motion,
            max_mask_box_motion=max_mask_box_motion,
            min_mask_confidence=min_mask_confidence,
            max_background_change=max_background_change,
        )

    def transform(self, results: dict) -> dict:
        figures = quality_figures(
            results.get("body_areas"),
            results.get("pose_keypoints"),
            results.get("pose_scores"),
            results.get("frame_brightness"),
            results.get("body_compactness"),
            results.get("body_boxes"),
            results.get("body_confidence"),
            results.get("background_changes"),
            results.get("body_changes"),
            results.get("alignment_usable_fraction"),
        )
        sampled = len(results["frame_inds"])
        results["quality"] = quality_record(
            figures,
            self.gate,
            results.get("alignment_fallback"),
            fps=float(results["fps"]),
            duration_s=round(sampled / float(results["sample_fps"]), 3),
            sampled_frames=sampled,
        )
        return results

    def __repr__(self) -> str:
        values = self.gate.to_dict() if self.gate is not None else {}
        settings = ", ".join(f"{k}={v!r}" for k, v in values.items())
        return f"{type(self).__name__}({settings})"
