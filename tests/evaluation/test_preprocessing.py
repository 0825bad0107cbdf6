"""gm_plugins.evaluation.preprocessing (tools/analysis_tools/evaluate_preprocessing.py): the
scores, the report files, bad videos and bad tables."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gm_plugins.datasets.subjects import SubjectsError
from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
from gm_plugins.evaluation import preprocessing as tool
from gm_plugins.preprocess import geometry as geo
from tests.preprocess.transforms.conftest import tiny_models  # noqa: F401  (session fixture)
from tests.preprocess.transforms.model_configs import write_pipeline_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def _keypoints(num_frames: int, length: float, angle_deg: float) -> np.ndarray:
    """(T, 17, 3) COCO keypoints whose trunk has the given length and direction (neck->crotch)."""
    keypoints = np.zeros((num_frames, 17, 3), np.float32)
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    across = np.array([-direction[1], direction[0]]) * 8.0
    neck, crotch = np.array([60.0, 50.0]), np.array([60.0, 50.0]) + length * direction
    points = (neck + across, neck - across, crotch + across, crotch - across)
    for index, point in zip(geo.TRUNK_KEYPOINTS, points, strict=True):
        keypoints[:, index, :2] = point
    keypoints[..., 2] = 2
    return keypoints


def _aligned_results(truth: np.ndarray, estimate_scale: float, out_size: int = 64) -> dict:
    """Results of an alignment computed from the true keypoints scaled by ``estimate_scale``."""
    centers, lengths, angles, _ = geo.trunk_estimates(truth[:, :, :2])
    body = geo.aggregate_body_frame(centers, lengths * estimate_scale, angles)
    matrix = geo.alignment_matrix(body, scale=3.75, out_size=out_size)
    return dict(
        frame_inds=np.arange(len(truth)), alignment_matrix=np.repeat(matrix[None], len(truth), 0)
    )


def test_an_alignment_from_the_true_trunk_is_upright_and_exactly_the_target_length():
    truth = _keypoints(6, length=40.0, angle_deg=30.0)
    trunk = tool.aligned_trunk(_aligned_results(truth, 1.0), truth)
    assert np.degrees(trunk.angle) == pytest.approx(90.0, abs=1e-3)
    assert trunk.length == pytest.approx(64 / 3.75, rel=1e-4)
    # a trunk estimated 10 % too long comes out 10 % too short
    trunk = tool.aligned_trunk(_aligned_results(truth, 1.1), truth)
    assert trunk.length / (64 / 3.75) == pytest.approx(1 / 1.1, rel=1e-4)


def test_pck_counts_trunk_points_within_the_threshold_of_the_diagonal():
    truth = _keypoints(4, length=40.0, angle_deg=90.0)
    estimate = truth[:2, :, :2].copy()
    estimate[1, geo.SHOULDERS[0]] += [0.0, 12.0]  # 12 px off; 0.05 * diagonal(160x120) = 10
    results = dict(
        original_shape=(120, 160),
        frame_inds=np.array([0, 2, 3]),
        pose_frame_positions=np.array([0, 2]),
        pose_keypoints=estimate,
    )
    hits = tool.trunk_hits(results, truth, threshold=0.05)
    assert hits.shape == (8,) and hits.sum() == 7


def test_mask_iou_counts():
    predicted = np.array([[[0.9, 0.6, 0.4, 0.0]]])  # soft masks, > 0.5 counts
    truth = np.array([[[1, 0, 1, 0]]], np.uint8)
    assert tool.mask_counts(predicted, truth) == (1, 3)


@pytest.fixture
def dataset(tmp_path, tiny_models):  # noqa: F811
    """A tiny synthetic dataset, one extra table row for a broken video, a pipeline config."""
    data = tmp_path / "data"
    config = GeneratorConfig(subjects=3, seconds=1.0, fps=15, width=64, height=48, prep_subjects=0)
    generate_dataset(data, config, progress=False)
    (data / "videos/s9999.mp4").write_bytes(b"\x00broken" * 50)
    with open(data / "subjects.csv", "a") as table:
        table.write("s9999,PR,sheet,videos/s9999.mp4\n")
    return data, write_pipeline_config(tmp_path / "preprocess.py", tiny_models)


@pytest.mark.slow
def test_report_lists_every_video_and_a_broken_one_is_skipped_and_named(dataset, tmp_path, capsys):
    data, config = dataset
    out = tmp_path / "report"
    summary = tool.evaluate(config, data)
    assert "s9999: FAILED" in capsys.readouterr().out
    tool.write_report(out, summary)
    with open(out / "videos.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["subject_id"] for row in rows] == ["s0000", "s0001", "s0002"]
    assert list(rows[0]) == list(tool.COLUMNS)
    written = json.loads((out / "summary.json").read_text())
    assert written["videos"] == 3 and list(written["failed"]) == ["s9999"]
    assert "rows" not in written
    ious = [float(row["mask_iou"]) for row in rows]
    assert min(ious) - 1e-9 <= written["iou"] <= max(ious) + 1e-9  # pooled over the videos
    assert written["aligned"] == np.mean([row["aligned"] == "True" for row in rows])
    lines = tool.format_summary(summary)
    assert lines[0].startswith("3 videos,") and lines[0].endswith("1 failed")


def test_a_bad_subjects_table_stops_before_any_video_and_names_every_bad_row(tmp_path):
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    (data / "videos" / "a.mp4").write_bytes(b"\x00")
    (data / "subjects.csv").write_text(
        "subject_id,label,video\na,,videos/a.mp4\na,FMs,videos/a.mp4\nb,,../b.mp4\n"
    )
    with pytest.raises(SubjectsError) as caught:
        tool.evaluate("no-such-config.py", data)  # the table is checked before the config
    error = str(caught.value)
    assert "subjects.csv" in error and "  line 2:" not in error  # labels are not needed here
    assert "line 3: subject_id 'a' is already used on line 2" in error
    assert "line 4: video '../b.mp4' leads outside the data root" in error


def test_the_tool_exits_2_on_a_bad_table_and_removes_an_old_summary(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "subjects.csv").write_text("subject_id,label,video\na,,../a.mp4\n")
    out = tmp_path / "report"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # an earlier run's
    run = subprocess.run(
        [sys.executable, "tools/analysis_tools/evaluate_preprocessing.py", "no-such-config.py",
         "--data-root", str(data), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "error:" in run.stderr and "leads outside the data root" in run.stderr
    assert not (out / "summary.json").exists()


def test_truth_is_scaled_to_the_decoded_frames():
    from gm_plugins.evaluation.preprocessing import truth_in_frame_pixels

    masks = np.zeros((2, 96, 128), np.uint8)
    masks[:, 20:60, 40:100] = 1
    keypoints = np.array([[[100.0, 50.0, 2.0], [10.0, 90.0, 1.0]]])
    same_masks, same_keypoints = truth_in_frame_pixels(
        dict(original_shape=(96, 128)), masks, keypoints
    )
    assert same_masks is masks and same_keypoints is keypoints
    small_masks, small_keypoints = truth_in_frame_pixels(
        dict(original_shape=(48, 64)), masks, keypoints
    )
    assert small_masks.shape == (2, 48, 64) and small_masks.sum() == 2 * 20 * 30
    np.testing.assert_allclose(small_keypoints, [[[50.0, 25.0, 2.0], [5.0, 45.0, 1.0]]])
