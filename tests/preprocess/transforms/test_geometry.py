"""Alignment geometry: known keypoints in, exact matrices out; robust aggregation; fallback."""

from __future__ import annotations

import numpy as np
import pytest

from gm_plugins.preprocess import geometry


def trunk(shoulders, hips) -> np.ndarray:
    """COCO-17 keypoints (17, 2) with only shoulders and hips set (the rest far away)."""
    keypoints = np.full((17, 2), 1e4)
    keypoints[[5, 6]] = shoulders
    keypoints[[11, 12]] = hips
    return keypoints


def test_upright_trunk_is_only_translated_and_scaled():
    keypoints = trunk([(90, 50), (110, 50)], [(90, 90), (110, 90)])
    centers, lengths, angles, valid = geometry.trunk_estimates(keypoints[None])
    np.testing.assert_allclose(centers[0], (100, 70))
    assert lengths[0] == pytest.approx(40)
    assert angles[0] == pytest.approx(np.pi / 2)
    assert valid.all()
    body = geometry.BodyFrame(center=(100, 70), length=40, angle=np.pi / 2)
    matrix = geometry.alignment_matrix(body, scale=2.5, out_size=100)  # zoom 100 / (2.5 * 40) = 1
    np.testing.assert_allclose(matrix, [[1, 0, 49.5 - 100], [0, 1, 49.5 - 70]], atol=1e-5)


def test_horizontal_trunk_is_turned_head_up_and_zoomed():
    # Head to the left: neck (50, 100), crotch (90, 100).
    keypoints = trunk([(50, 90), (50, 110)], [(90, 90), (90, 110)])
    centers, lengths, angles, _ = geometry.trunk_estimates(keypoints[None])
    body = geometry.aggregate_body_frame(centers, lengths, angles)
    assert body.angle == pytest.approx(0.0)
    matrix = geometry.alignment_matrix(body, scale=1.25, out_size=100)  # zoom 100 / 50 = 2
    np.testing.assert_allclose(matrix, [[0, -2, 49.5 + 2 * 100], [2, 0, 49.5 - 2 * 70]], atol=1e-4)
    neck, crotch = geometry.transform_points(matrix, [(50, 100), (90, 100)])
    np.testing.assert_allclose(neck, (49.5, 9.5), atol=1e-4)  # above the centre: head up
    np.testing.assert_allclose(crotch, (49.5, 89.5), atol=1e-4)


def test_upside_down_trunk_is_rotated_half_a_turn():
    keypoints = trunk([(90, 90), (110, 90)], [(90, 50), (110, 50)])
    centers, lengths, angles, _ = geometry.trunk_estimates(keypoints[None])
    body = geometry.aggregate_body_frame(centers, lengths, angles)
    matrix = geometry.alignment_matrix(body, scale=2.5, out_size=100)
    np.testing.assert_allclose(matrix[:, :2], [[-1, 0], [0, -1]], atol=1e-6)
    neck = geometry.transform_points(matrix, [(100, 90)])[0]
    assert neck[1] < 49.5


def test_low_scores_and_zero_length_trunks_are_invalid():
    good = trunk([(90, 50), (110, 50)], [(90, 90), (110, 90)])
    collapsed = trunk([(100, 50), (100, 50)], [(100, 50), (100, 50)])
    scores = np.ones((3, 17))
    scores[1, 11] = 0.1  # one hip not found
    _, _, _, valid = geometry.trunk_estimates(np.stack([good, good, collapsed]), scores, 0.3)
    assert valid.tolist() == [True, False, False]


def test_interquartile_mean_ignores_outlying_lengths():
    lengths = np.array([100.0, 10.0, 12.0, 1.0, 11.0])
    centers = np.array([[500.0, 500.0], [10, 20], [12, 20], [-400, 0], [11, 20]])
    angles = np.full(5, np.pi / 2)
    body = geometry.aggregate_body_frame(centers, lengths, angles)
    assert body.length == pytest.approx(11.0)
    assert body.center == pytest.approx((11.0, 20.0))
    assert body.num_estimates == 5
    assert sorted(geometry.interquartile_indices(np.arange(12.0))) == list(range(3, 9))


def test_angles_are_averaged_as_unit_vectors():
    angles = np.radians([179.0, -179.0, 180.0])  # a plain mean would give 60 degrees
    body = geometry.aggregate_body_frame(np.zeros((3, 2)), np.ones(3), angles)
    assert abs(abs(np.degrees(body.angle)) - 180.0) < 1e-6


def test_no_estimates_aggregate_to_none():
    assert geometry.aggregate_body_frame(np.zeros((0, 2)), np.zeros(0), np.zeros(0)) is None


def test_fallback_centres_unrotated_on_the_box_or_the_frame():
    body = geometry.fallback_body_frame(np.array([20, 10, 60, 30]), (320, 240), scale=4.0)
    assert body.center == (40.0, 20.0)
    assert body.length == pytest.approx(1.2 * 40 / 4.0)
    matrix = geometry.alignment_matrix(body, 4.0, 48)
    assert matrix[0, 1] == pytest.approx(0) and matrix[0, 0] > 0  # no rotation
    whole = geometry.fallback_body_frame(None, (320, 240), scale=4.0)
    assert whole.center == (160.0, 120.0) and whole.length == pytest.approx(80.0)
    nan_box = geometry.fallback_body_frame(np.full(4, np.nan), (320, 240), scale=4.0)
    assert nan_box == whole


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
def test_rotate90_points_follow_the_pixels_of_np_rot90(quarter_turns):
    width, height = 7, 5
    points = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 4.0]])
    for x, y in points.astype(int):
        image = np.zeros((height, width), np.uint8)
        image[y, x] = 1
        turned = np.rot90(image, quarter_turns)
        (row,), (col,) = np.nonzero(turned)
        moved = geometry.rotate90_points(np.array([x, y]), quarter_turns, (width, height))
        np.testing.assert_allclose(moved, [col, row])
    # k turns of a W x H image are undone by 4 - k turns of the turned one
    turned_size = (width, height) if quarter_turns % 2 == 0 else (height, width)
    back = geometry.rotate90_points(
        geometry.rotate90_points(points, quarter_turns, (width, height)),
        4 - quarter_turns,
        turned_size,
    )
    np.testing.assert_allclose(back, points)


def test_rotate90_box_is_the_box_of_the_turned_corners():
    box = geometry.rotate90_box(np.array([1.0, 2.0, 4.0, 3.0]), 1, (7, 5))
    np.testing.assert_allclose(box, [2.0, 2.0, 3.0, 5.0])  # x from y, y from W - 1 - x
