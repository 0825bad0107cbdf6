"""The training domain: ranges of the quality figures over validation infants."""

from __future__ import annotations

import pytest

from gm_plugins.evaluation.domain import (
    DOMAIN_FIGURES,
    fit_domain,
    outside_domain,
    usable_keyframe_fraction,
    video_figures,
)
from gm_plugins.preprocess.quality import GATE_CHECKS


def infant(**figures) -> dict:
    base = dict(keypoint_score_median=0.8, plausible_skeleton_fraction=1.0, body_change=0.1,
                brightness_median=100.0, mask_area_cv=0.05)  # fmt: skip
    return dict(base, **figures)


def test_every_gate_figure_is_checked_against_the_domain():
    assert {figure for figure, _, _ in GATE_CHECKS} <= set(DOMAIN_FIGURES)


def test_ranges_widen_the_validation_extremes_on_the_checked_side_only():
    validation = [infant(keypoint_score_median=v) for v in (0.6, 0.7, 0.8, 1.0)]
    domain = fit_domain(validation, margin=0.25)
    rule = domain["keypoint_score_median"]
    assert rule["side"] == "below" and rule["high"] is None
    assert rule["low"] == pytest.approx(0.6 - 0.25 * 0.4)
    assert (rule["n"], rule["min"], rule["max"]) == (4, 0.6, 1.0)
    # a figure every infant shares exactly still gets a floor of slack; fractions stay in [0, 1]
    assert domain["plausible_skeleton_fraction"]["low"] == pytest.approx(0.99)
    brightness = domain["brightness_median"]
    assert (brightness["low"], brightness["high"]) == (95.0, 105.0)  # both sides, 5 grey levels
    assert "trunk_motion" not in domain  # no validation infant has it
    with pytest.raises(ValueError, match="margin"):
        fit_domain(validation, margin=-1)


def test_a_video_with_implausible_pose_evidence_is_outside_and_named():
    domain = fit_domain([infant(keypoint_score_median=v) for v in (0.7, 0.8, 0.9)])
    home_video = infant(keypoint_score_median=0.30, plausible_skeleton_fraction=0.0)
    problems = outside_domain(domain, home_video)
    assert len(problems) == 2
    assert problems[0].startswith("keypoint_score_median=0.3 below 0.65")
    assert "validation infants: 0.7-0.9" in problems[0]
    assert problems[1].startswith("plausible_skeleton_fraction=0 below 0.99")
    # better evidence than any validation infant is not out of the domain
    assert outside_domain(domain, infant(keypoint_score_median=0.99)) == []
    # evidence every validation infant had but this video lacks (or is not a number) is out
    for missing in (None, float("nan")):
        problems = outside_domain(domain, dict(infant(), keypoint_score_median=missing))
        assert problems == ["keypoint_score_median not measured (validation infants: 0.7-0.9)"]
    # too bright and too dark are both out
    assert len(outside_domain(domain, infant(brightness_median=250.0))) == 1


def test_usable_keyframe_share_is_read_or_derived_from_the_alignment_record():
    recorded = dict(quality=dict(usable_keyframe_fraction=0.4))
    assert usable_keyframe_fraction(recorded) == 0.4
    old = dict(
        quality={},
        keypoint_positions=[0, 6, 12, 18],
        alignment=dict(mode="video", body_frame=dict(num_estimates=3, source="video")),
    )
    assert usable_keyframe_fraction(old) == 0.75
    fallback = dict(old, alignment=dict(mode="video", body_frame=dict(source="fallback")))
    assert usable_keyframe_fraction(fallback) == 0.0
    letterbox = dict(old, alignment=dict(mode="letterbox", body_frame=None))
    assert usable_keyframe_fraction(letterbox) is None
    figures = video_figures(dict(old, quality=dict(body_change=0.2)))
    assert figures["body_change"] == 0.2 and figures["usable_keyframe_fraction"] == 0.75
    assert set(figures) == set(DOMAIN_FIGURES)


def test_the_margin_is_the_smallest_that_keeps_every_validation_infant_in():
    from gm_plugins.evaluation.domain import choose_margin

    spread = [infant(keypoint_score_median=v) for v in (0.5, 0.8, 0.82, 0.84, 0.86, 0.9)]
    margin, flagged = choose_margin(spread)
    # without 0.5 the others span 0.8-0.9: 0.5 is let in only at 0.3 / 0.1 = 3 range widths
    assert margin == 3.0 and flagged == 0.0
    # so widely spread validation infants give a loose domain; close ones a tight one
    assert outside_domain(fit_domain(spread, margin), infant(keypoint_score_median=0.3)) == []
    tight = [infant(keypoint_score_median=v) for v in (0.80, 0.81, 0.82, 0.83, 0.84, 0.85)]
    tight_margin, _ = choose_margin(tight)
    assert tight_margin < margin
    domain = fit_domain(tight, tight_margin)
    assert outside_domain(domain, infant(keypoint_score_median=0.3)) != []
