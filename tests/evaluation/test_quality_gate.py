"""Fitting the "no infant found" gate on the validation half and reporting on both halves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gm_plugins.evaluation.quality_gate import (
    cross_validate_gate,
    fit_on_validation,
    gate_report,
    in_validation_half,
    wilson_interval,
)


def figures_rows(kind: str, count: int, rng: np.random.Generator, prefix: str) -> list[dict]:
    infant = kind == "infant"
    return [
        dict(
            subject_id=f"{prefix}{i:03d}",
            kind=kind,
            scene_kind=kind if infant else "texture",
            half="validation" if in_validation_half(f"{prefix}{i:03d}") else "test",
            brightness_median=float(rng.uniform(60, 200)),
            mask_area_median=float(rng.uniform(0.05, 0.2) if infant else rng.uniform(0.0, 0.1)),
            mask_area_cv=float(rng.uniform(0.01, 0.2) if infant else rng.uniform(0.1, 2.0)),
            mask_compactness_median=float(
                rng.uniform(0.8, 1.0) if infant else rng.uniform(0.2, 0.9)
            ),
            keypoint_score_median=float(rng.uniform(0.3, 0.9) if infant else rng.uniform(0.1, 0.4)),
            plausible_skeleton_fraction=float(rng.uniform(0, 1) if infant else rng.uniform(0, 0.4)),
        )
        for i in range(count)
    ]


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = figures_rows("infant", 80, rng, "s") + figures_rows("empty", 80, rng, "e")
    return pd.DataFrame.from_records(rows)


def test_gate_is_fitted_on_the_validation_half_only(table):
    gate = fit_on_validation(table)
    changed = table.copy()
    test_half = changed["half"] == "test"
    changed.loc[test_half, "keypoint_score_median"] = 0.01  # the test half cannot move the fit
    assert fit_on_validation(changed) == gate
    assert gate.no_infant_model is not None
    assert fit_on_validation(table, evidence_model=False).no_infant_model is None
    with pytest.raises(ValueError, match="no infants of the validation half"):
        fit_on_validation(table[table["kind"] == "empty"])


def test_report_counts_flagged_videos_with_wilson_intervals(table):
    gate = fit_on_validation(table)
    report = gate_report(table, gate).set_index(["half", "kind"])
    validation_infants = report.loc[("validation", "infant")]
    assert validation_infants["flagged"] == 0  # fitted to pass every validation infant
    total = int((table["kind"] == "empty").sum())
    assert report.xs("empty", level="kind")["videos"].sum() == total
    for _, line in report.iterrows():
        low, high = wilson_interval(int(line["flagged"]), int(line["videos"]))
        assert line["ci_low"] == pytest.approx(low, abs=1e-4)
        assert line["ci_high"] == pytest.approx(high, abs=1e-4)
        assert len(line["flagged_ids"].split()) == line["flagged"]
    assert report.loc[("test", "empty")]["flagged_fraction"] > 0.8


def test_wilson_interval_of_zero_of_fifty_excludes_ten_percent():
    low, high = wilson_interval(0, 50)
    assert low == 0.0 and 0.05 < high < 0.1
    assert all(np.isnan(wilson_interval(0, 0)))


def test_fitting_on_both_halves_uses_the_test_half_too(table):
    validation_only = fit_on_validation(table)
    both = fit_on_validation(table, halves=("validation", "test"))
    assert both != validation_only
    changed = table.copy()
    changed.loc[changed["half"] == "test", "keypoint_score_median"] = 0.01
    assert fit_on_validation(changed, halves=("validation", "test")) != both
    report = gate_report(table, both).set_index(["half", "kind"])
    assert report.loc[("test", "infant")]["flagged"] == 0  # every fitted infant passes


def test_cross_validation_judges_every_video_once_with_a_gate_that_never_saw_it(table):
    settings = {
        "largest infant": dict(infant_quantile=1.0),
        "score only": dict(infant_quantile=1.0, evidence_figures=["keypoint_score_median"]),
    }
    # margin 5: the per-figure thresholds never flag, the evidence model decides alone
    cv = cross_validate_gate(table, settings, folds=5, margin=5.0).set_index("setting")
    assert (cv["infant_videos"] == 80).all() and (cv["empty_videos"] == 80).all()
    # the combination of figures catches more empty scenes than the score alone
    assert cv.loc["largest infant", "empty_flagged"] > cv.loc["score only", "empty_flagged"]
    # held out, an infant beyond every fitted infant can be flagged: the count is not forced to 0
    outlier = table.copy()
    outlier.loc[0, "keypoint_score_median"] = 0.0
    again = cross_validate_gate(outlier, settings, folds=5, margin=5.0).set_index("setting")
    assert again.loc["score only", "infant_flagged"] >= 1
    assert cross_validate_gate(table, settings, folds=5, margin=5.0).equals(cv.reset_index())
