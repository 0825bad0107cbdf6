"""The quality record and the "no infant found" gate (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from gm_plugins.preprocess.quality import (
    EVIDENCE_FIGURES,
    QualityGate,
    box_motion,
    fallback_of,
    fit_gate,
    limb_plausibility,
    quality_figures,
    quality_record,
    still_video,
    trunk_stability,
)


def infant_skeleton(scale: float = 20.0) -> np.ndarray:
    """COCO-17 keypoints (17, 2) of an upright body with a trunk of ``scale`` pixels."""
    points = np.zeros((17, 2))
    points[5], points[6] = (-0.4, 0), (0.4, 0)  # shoulders
    points[7], points[8] = (-0.6, 0.4), (0.6, 0.4)  # elbows
    points[9], points[10] = (-0.7, 0.8), (0.7, 0.8)  # wrists
    points[11], points[12] = (-0.25, 1), (0.25, 1)  # hips
    points[13], points[14] = (-0.3, 1.5), (0.3, 1.5)  # knees
    points[15], points[16] = (-0.3, 2.0), (0.3, 2.0)  # ankles
    points[:5] = (0, -0.3)
    return points * scale + 50


def test_a_body_is_plausible_and_scattered_or_collapsed_points_are_not():
    rng = np.random.default_rng(0)
    body = infant_skeleton()
    scattered = rng.uniform(0, 100, (20, 17, 2))
    collapsed = np.full((1, 17, 2), 10.0)
    one_long_arm = body.copy()
    one_long_arm[9] = body[7] + (body[9] - body[7]) * 4  # left forearm 4x the right one
    plausible = limb_plausibility(np.stack([body, body * 2, *scattered, *collapsed, one_long_arm]))
    assert plausible[:2].all()
    assert plausible[2:].mean() < 0.1 and not plausible[-2:].any()


def test_figures_measure_area_stability_and_confidence():
    areas = np.array([0.2, 0.2, 0.2, 0.2])
    keypoints = np.stack([infant_skeleton()] * 3)
    figures = quality_figures(areas, keypoints, np.full((3, 17), 0.8), np.array([0.0, 60, 90]))
    assert figures["brightness_median"] == 60.0
    assert figures["mask_area_median"] == 0.2 and figures["mask_area_cv"] == 0.0
    assert figures["keypoint_score_median"] == 0.8
    assert figures["plausible_skeleton_fraction"] == 1.0
    flicker = quality_figures(np.array([0.0, 0.4, 0.0, 0.4]), None, None)
    assert flicker["mask_area_cv"] == 1.0 and flicker["keypoint_score_median"] is None


def test_trunk_stability_tells_a_lying_body_from_poses_that_jump():
    rng = np.random.default_rng(4)
    lying = np.stack([infant_skeleton() + rng.normal(0, 0.5, (17, 2)) for _ in range(8)])
    length_cv, motion = trunk_stability(lying)
    assert length_cv < 0.05 and motion < 0.05
    drifting = lying + np.arange(8)[:, None, None] * np.array([10.0, 0.0])  # half a trunk/step
    assert trunk_stability(drifting)[1] == pytest.approx(0.5, abs=0.05)
    jumping = rng.uniform(0, 200, (8, 17, 2))
    jump_cv, jump_motion = trunk_stability(jumping)
    assert jump_cv > 0.2 and jump_motion > 0.5
    assert trunk_stability(lying[:1]) == (None, None)  # one keyframe: no change to measure
    figures = quality_figures(None, lying, np.full((8, 17), 0.8))
    assert (figures["trunk_length_cv"], figures["trunk_motion"]) == (length_cv, motion)
    gate = QualityGate(max_trunk_motion=0.5)
    assert gate.failures(figures) == []
    jumping_failures = gate.failures(quality_figures(None, jumping, np.full((8, 17), 0.8)))
    assert any(failure.startswith("trunk_motion=") for failure in jumping_failures)


def test_box_motion_is_the_median_step_of_the_body_box_in_diagonals():
    still = np.tile([[10.0, 10.0, 40.0, 50.0]], (6, 1))  # diagonal 50
    assert box_motion(still) == 0.0
    swinging = (
        still + np.array([0, 25, 0, 25] * 3 + [0, 0, 0, 0] * 3).reshape(6, 4)[[0, 3, 1, 4, 2, 5]]
    )
    assert box_motion(swinging) == pytest.approx(0.5)  # 25 px steps of a 50 px diagonal
    gaps = still.copy()
    gaps[[1, 3]] = np.nan  # frames without a body are skipped, not bridged
    assert box_motion(gaps) == 0.0
    assert box_motion(np.full((4, 4), np.nan)) is None and box_motion(still[:1]) is None
    figures = quality_figures(np.full(6, 0.1), None, None, mask_boxes=swinging)
    assert figures["mask_box_motion"] == pytest.approx(0.5)
    assert quality_figures(np.full(6, 0.1), None, None)["mask_box_motion"] is None


def test_mask_confidence_is_the_mean_probability_of_the_body_pixels():
    from gm_plugins.preprocess.transforms.background import mask_confidence

    sure = np.zeros((20, 20), np.float32)
    sure[5:15, 5:15] = 0.95
    unsure = np.where(sure > 0, 0.55, 0.2).astype(np.float32)
    assert mask_confidence(sure) == pytest.approx(0.95)
    assert mask_confidence(unsure) == pytest.approx(0.55)
    assert np.isnan(mask_confidence(np.zeros((4, 4), np.float32)))
    figures = quality_figures(
        np.full(3, 0.1), None, None, mask_confidence=np.array([0.9, np.nan, 0.7])
    )
    assert figures["mask_confidence_median"] == pytest.approx(0.8)  # frames without a body skipped
    gate = QualityGate(min_mask_confidence=0.75)
    assert gate.failures(dict(mask_confidence_median=0.6)) == [
        "mask_confidence_median=0.6 below 0.75"
    ]


def test_scene_changes_tell_still_bedding_from_a_moving_background():
    from gm_plugins.preprocess.transforms.background import (
        MOTION_SIDE,
        SceneChanges,
        motion_thumbnail,
    )

    rng = np.random.default_rng(3)
    bedding = rng.integers(40, 200, (240, 320, 3), np.uint8)
    bedding = np.repeat(np.repeat(bedding[::8, ::8], 8, 0), 8, 1)  # coarse pattern
    body = np.zeros((120, 160), np.float32)  # probability map at half size
    body[40:80, 60:100] = 0.9

    def frame(shift: int, body_level: int, brightness: int = 0) -> np.ndarray:
        image = np.roll(bedding, shift, axis=1).astype(np.int16) + brightness
        image[80:160, 120:200] = body_level  # the body, where the mask says
        noise = rng.normal(0, 4, image.shape)  # sensor noise stays below the change level
        return (image + noise).clip(0, 255).astype(np.uint8)

    thumb, in_body = motion_thumbnail(frame(0, 100), body)
    assert thumb.shape == (MOTION_SIDE * 3 // 4, MOTION_SIDE) and thumb.dtype == np.float32
    assert in_body[25, 40] and not in_body[5, 5]  # the body, grown by one thumbnail pixel
    assert in_body.sum() > (40 * 40) / 4  # covers at least the body's share of the thumbnail

    still = SceneChanges()
    first = still.add(*motion_thumbnail(frame(0, 100), body))
    assert np.isnan(first).all()  # nothing to compare the first frame with
    background, inside = still.add(*motion_thumbnail(frame(0, 200, brightness=30), body))
    assert background == 0.0  # a global lighting change is not motion
    # The body covers 20 x 20 thumbnail pixels (the frame is 4x the thumbnail) and all of them
    # changed; the one-pixel ring it is grown by (22 x 22 in all) did not.
    assert inside == pytest.approx(20 * 20 / (22 * 22))
    sliding = SceneChanges()
    sliding.add(*motion_thumbnail(frame(0, 100), body))
    background, _ = sliding.add(*motion_thumbnail(frame(24, 100), body))
    assert background > 0.5  # a sliding cloth changes most of the background
    tiny = SceneChanges()  # frames smaller than a thumbnail keep their size
    tiny.add(*motion_thumbnail(np.zeros((12, 16, 3), np.uint8), np.zeros((12, 16), np.float32)))
    background, inside = tiny.add(
        *motion_thumbnail(np.zeros((12, 16, 3), np.uint8), np.ones((12, 16), np.float32))
    )
    assert np.isnan(background) and inside == 0.0  # all body: no background left

    figures = quality_figures(
        np.full(3, 0.1),
        None,
        None,
        background_changes=np.array([np.nan, 0.1, 0.3]),
        body_changes=np.array([np.nan, 0.5, 0.7]),
    )
    assert figures["background_change"] == pytest.approx(0.2)
    assert figures["body_change"] == pytest.approx(0.6)
    assert quality_figures(np.full(3, 0.1), None, None)["background_change"] is None
    assert QualityGate(max_background_change=0.1).failures(figures) == [
        "background_change=0.2 above 0.1"
    ]


def test_evidence_model_combines_the_chosen_figures_only():
    rng = np.random.default_rng(5)

    def scene(motion: float) -> dict:
        return dict(mask_area_median=0.1, keypoint_score_median=0.6, trunk_motion=motion)

    infants = [scene(m) for m in rng.uniform(0.01, 0.2, 50)]
    empties = [scene(m) for m in rng.uniform(0.5, 3.0, 50)]
    assert (
        "trunk_motion" not in fit_gate(infants, empty_figures=empties).no_infant_model["features"]
    )
    gate = fit_gate(infants, empty_figures=empties, evidence_figures=EVIDENCE_FIGURES)
    assert gate.no_infant_model["features"] == [
        "mask_area_median",
        "keypoint_score_median",
        "trunk_motion",
    ]
    assert all(gate.failures(e) for e in empties)
    without = fit_gate(
        infants,
        empty_figures=empties,
        evidence_figures=["mask_area_median", "keypoint_score_median"],
    )
    assert "trunk_motion" not in without.no_infant_model["features"]
    with pytest.raises(ValueError, match="unknown evidence figures"):
        fit_gate(infants, empty_figures=empties, evidence_figures=["hand_count"])


def test_gate_names_every_failed_check_and_no_infant_wins_over_alignment():
    gate = QualityGate(min_mask_area=0.05, max_mask_area_cv=0.5, min_keypoint_score=0.3)
    empty = dict(
        mask_area_median=0.001,
        mask_area_cv=2.0,
        keypoint_score_median=0.1,
        plausible_skeleton_fraction=1.0,
    )
    failures = gate.failures(empty)
    assert len(failures) == 3 and "mask_area_median=0.001 below 0.05" in failures[0]
    record = quality_record(empty, gate, "no pose estimate", fps=30.0)
    assert (
        record["fallback"] == "no_infant" and "keypoint_score_median" in record["fallback_detail"]
    )
    assert record["fps"] == 30.0 and record["gate"]["min_mask_area"] == 0.05
    infant = dict(empty, mask_area_median=0.2, mask_area_cv=0.1, keypoint_score_median=0.7)
    assert gate.failures(infant) == []
    aligned_badly = quality_record(infant, gate, "no pose estimate")
    assert aligned_badly["fallback"] == "alignment_failed"
    assert quality_record(infant, gate, None)["fallback"] is None
    assert QualityGate(None, None, None, None, None).failures(empty) == []
    dark = QualityGate().failures(dict(infant, brightness_median=2.0))
    assert dark == ["brightness_median=2 below 8"]


def test_fallback_of_reads_new_and_old_meta():
    assert fallback_of(dict(quality=dict(fallback="no_infant"))) == "no_infant"
    assert fallback_of(dict(quality=dict(fallback=None), alignment=dict(fallback="x"))) is None
    assert fallback_of(dict(alignment=dict(fallback="no pose"))) == "alignment_failed"
    assert fallback_of(dict(alignment=dict(fallback=None))) is None


def test_fitted_gate_passes_every_validation_infant_with_a_margin():
    rng = np.random.default_rng(0)
    infants = [
        dict(
            brightness_median=float(rng.uniform(60, 120)),
            mask_area_median=float(rng.uniform(0.1, 0.3)),
            mask_area_cv=float(rng.uniform(0.01, 0.1)),
            keypoint_score_median=float(rng.uniform(0.6, 0.9)),
            plausible_skeleton_fraction=float(rng.uniform(0.8, 1.0)),
        )
        for _ in range(50)
    ]
    gate = fit_gate(infants, margin=0.25)
    assert all(gate.failures(figures) == [] for figures in infants)
    smallest = min(f["mask_area_median"] for f in infants)
    assert gate.min_mask_area == pytest.approx(smallest * 0.75, abs=1e-4)
    assert gate.max_mask_area_cv == pytest.approx(
        max(f["mask_area_cv"] for f in infants) * 1.25, abs=1e-4
    )
    empty = dict(infants[0], mask_area_median=smallest * 0.5)
    assert gate.failures(empty) and "mask_area_median" in gate.failures(empty)[0]
    assert fit_gate([dict(mask_area_median=0.2)]).min_keypoint_score is None


def test_compactness_is_the_share_of_the_largest_blob():
    from gm_plugins.preprocess.transforms.background import mask_compactness

    mask = np.zeros((20, 20), np.float32)
    mask[2:8, 2:8] = 0.9  # 36 pixels
    assert mask_compactness(mask) == 1.0
    mask[15:17, 15:17] = 0.9  # a second blob of 4 pixels
    assert mask_compactness(mask) == pytest.approx(36 / 40)
    assert np.isnan(mask_compactness(np.zeros((5, 5), np.float32)))
    figures = quality_figures(np.full(3, 0.1), None, None, mask_compactness=np.r_[1.0, np.nan, 0.5])
    assert figures["mask_compactness_median"] == 0.75
    nothing = quality_figures(np.zeros(3), None, None, mask_compactness=np.full(3, np.nan))
    assert nothing["mask_compactness_median"] == 0.0


def test_evidence_model_separates_what_no_single_threshold_does():
    """Infants and empty scenes overlap on each figure but not on their combination."""
    rng = np.random.default_rng(1)

    def scene(score: float, skeleton: float) -> dict:
        return dict(
            mask_area_median=0.1,
            mask_area_cv=0.1,
            mask_compactness_median=0.9,
            keypoint_score_median=score,
            plausible_skeleton_fraction=skeleton,
        )

    # infants: score + skeleton > 1.2; empties below: each figure alone overlaps
    infants = [scene(s, 1.3 - s + rng.uniform(0, 0.1)) for s in rng.uniform(0.3, 0.9, 60)]
    empties = [scene(s, 1.1 - s - rng.uniform(0, 0.1)) for s in rng.uniform(0.3, 0.9, 60)]
    plain = fit_gate(infants, margin=0.0)
    assert plain.no_infant_model is None
    assert sum(bool(plain.failures(e)) for e in empties) < 45  # thresholds miss a quarter+
    gate = fit_gate(infants, margin=0.0, empty_figures=empties)
    assert all(gate.failures(f) == [] for f in infants)  # every given infant passes
    assert all(gate.failures(e) for e in empties)
    assert "no-infant evidence logit=" in gate.failures(empties[0])[-1]
    held_out = [scene(s, 1.05 - s) for s in (0.4, 0.6, 0.8)]
    assert all(gate.failures(e) for e in held_out)
    # the fitted gate is plain JSON and rebuilds the same decisions
    import json

    rebuilt = QualityGate(**json.loads(json.dumps(gate.to_dict())))
    assert [rebuilt.failures(e) for e in empties] == [gate.failures(e) for e in empties]


def test_infant_quantile_trades_a_few_fitting_infants_for_more_empty_scenes():
    rng = np.random.default_rng(2)

    def scene(score: float, area: float) -> dict:
        return dict(
            mask_area_median=area,
            mask_area_cv=0.1,
            mask_compactness_median=0.9,
            keypoint_score_median=score,
            plausible_skeleton_fraction=0.5,
        )

    # overlapping classes: the single most extreme infant decides the threshold at quantile 1
    infant_scores, empty_scores = rng.normal(0.6, 0.12, 200), rng.normal(0.3, 0.12, 100)
    infants = [scene(s, a) for s, a in zip(infant_scores, rng.uniform(0.05, 0.2, 200), strict=True)]
    empties = [scene(s, a) for s, a in zip(empty_scores, rng.uniform(0.05, 0.2, 100), strict=True)]
    largest = fit_gate(infants, 0.25, empty_figures=empties)
    quantile = fit_gate(infants, 0.25, empty_figures=empties, infant_quantile=0.98)
    margined = fit_gate(
        infants, 0.25, empty_figures=empties, infant_quantile=0.98, evidence_margin=0.5
    )

    def flagged(gate: QualityGate, videos: list[dict]) -> int:
        return sum(bool(gate.failures(v)) for v in videos)

    assert flagged(largest, infants) == 0
    assert 1 <= flagged(quantile, infants) <= 0.02 * len(infants) + 1
    assert flagged(quantile, empties) > flagged(largest, empties)
    assert quantile.no_infant_model["max_logit"] < largest.no_infant_model["max_logit"]
    assert margined.no_infant_model["max_logit"] == pytest.approx(
        quantile.no_infant_model["max_logit"] + 0.5, abs=1e-5
    )
    assert quantile.no_infant_model["infant_quantile"] == 0.98
    with pytest.raises(ValueError, match="infant_quantile"):
        fit_gate(infants, 0.25, empty_figures=empties, infant_quantile=0.2)


def test_a_video_in_which_nothing_moves_is_a_recorded_fallback():
    still = quality_figures(
        np.full(10, 0.1), None, None, background_changes=np.zeros(10), body_changes=np.zeros(10)
    )
    record = quality_record(still, QualityGate(), None)
    assert record["fallback"] == "no_movement"
    assert (
        "body_change=0" in record["fallback_detail"]
        and "moving infant" in record["fallback_detail"]
    )
    # no body found anywhere: the whole frame (background) decides
    empty = dict(still, body_change=None)
    assert still_video(empty) is not None and "no body found" in still_video(empty)
    # a moving body, or a moving background, is not still; nor is a video without the figures
    moving = quality_figures(
        np.full(10, 0.1),
        None,
        None,
        background_changes=np.zeros(10),
        body_changes=np.full(10, 0.01),
    )
    assert quality_record(moving, QualityGate(), None)["fallback"] is None
    assert still_video(dict(still, background_change=0.05)) is None
    assert still_video(quality_figures(None, None, None)) is None
    assert still_video(dict(still, background_change=float("nan"))) is None  # unknown, not still
    assert still_video(dict(still, body_change=float("nan"))) is None
    # the order: no infant, then no movement, then alignment
    dark = dict(still, brightness_median=1.0)
    assert quality_record(dark, QualityGate(), "no pose")["fallback"] == "no_infant"
    assert quality_record(still, QualityGate(), "no pose")["fallback"] == "no_movement"


def test_the_usable_keyframe_share_is_a_quality_figure():
    figures = quality_figures(None, None, None, usable_keyframe_fraction=0.25)
    assert figures["usable_keyframe_fraction"] == 0.25
    assert quality_figures(None, None, None)["usable_keyframe_fraction"] is None
