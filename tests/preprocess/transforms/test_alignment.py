"""PoseAlignment: wiring of keyframes, aggregation, warping and fallback; tiny mmpose models."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from gm_plugins.compat import library_scope
from gm_plugins.preprocess import geometry
from gm_plugins.preprocess.transforms import PoseAlignment
from gm_plugins.preprocess.transforms.alignment import keyframe_positions, segment_bounds
from tests.preprocess.transforms.model_configs import textured_frames


def trunk_keypoints(neck, crotch, half_width=6.0) -> np.ndarray:
    """COCO-17 (17, 2) with shoulders around ``neck`` and hips around ``crotch``."""
    neck, crotch = np.asarray(neck, float), np.asarray(crotch, float)
    along = (crotch - neck) / np.linalg.norm(crotch - neck)
    across = np.array([-along[1], along[0]]) * half_width
    keypoints = np.tile((neck + crotch) / 2, (17, 1))
    keypoints[[5, 6]] = neck + across, neck - across
    keypoints[[11, 12]] = crotch + across, crotch - across
    return keypoints


class KnownPose(PoseAlignment):
    """PoseAlignment whose estimator returns given keypoints, to check everything around it."""

    def __init__(self, keypoints, scores=None, **kwargs):
        super().__init__(**kwargs)
        self.known_keypoints = np.asarray(keypoints, np.float32)
        self.known_scores = (
            np.ones(self.known_keypoints.shape[:2], np.float32) if scores is None else scores
        )
        self.boxes_seen = []

    def estimate_keypoints(self, frames, boxes):
        self.boxes_seen.extend(boxes)
        self.frames_seen = frames
        return self.known_keypoints[: len(frames)], self.known_scores[: len(frames)]


@pytest.fixture
def pose_config(tiny_models):
    config, checkpoint = tiny_models["heatmap"]
    return dict(config=str(config), checkpoint=str(checkpoint))


def clip(count=12, step=5, size=(64, 48)):
    return dict(imgs=textured_frames(count, size), frame_inds=np.arange(count) * step)


def test_keyframes_every_30_source_frames_and_windows():
    frame_inds = np.arange(12) * 5
    assert keyframe_positions(frame_inds, 30).tolist() == [0, 6]
    assert segment_bounds(frame_inds, "video", 30) == [(0, 12)]
    assert segment_bounds(frame_inds, "window", 30) == [(0, 6), (6, 12)]


def test_video_mode_applies_one_matrix_that_puts_the_head_up(pose_config):
    known = [trunk_keypoints((20, 24), (44, 24)), trunk_keypoints((21, 25), (45, 25))]
    transform = KnownPose(known, **pose_config, scale=2.0, out_size=40)
    results = clip()
    results["imgs"][0] = np.zeros((48, 64, 3), np.uint8)
    results["imgs"][0][23:26, 19:22] = 255  # a dot on the neck of frame 0
    results = transform(results)
    body = geometry.BodyFrame(center=(32.5, 24.5), length=24.0, angle=0.0)
    expected = geometry.alignment_matrix(body, 2.0, 40)
    matrices = results["alignment_matrix"]
    assert matrices.shape == (12, 2, 3)
    np.testing.assert_allclose(matrices, np.broadcast_to(expected, (12, 2, 3)), atol=1e-4)
    assert results["body_frame"]["length"] == pytest.approx(24.0)
    assert results["body_frame"]["num_estimates"] == 2
    assert results["alignment_fallback"] is None and results["pose_frame_positions"].tolist() == [
        0,
        6,
    ]
    frame = results["imgs"][0]
    assert frame.shape == (40, 40, 3) and results["img_shape"] == (40, 40)
    neck = geometry.transform_points(expected, [(20, 24)])[0]
    assert neck[1] < 19.5  # above the centre after alignment
    brightest = np.unravel_index(frame[..., 0].argmax(), frame.shape[:2])
    assert brightest == (round(neck[1]), round(neck[0]))


def test_window_mode_gives_one_matrix_per_window(pose_config):
    known = [trunk_keypoints((20, 24), (44, 24)), trunk_keypoints((32, 10), (32, 40))]
    transform = KnownPose(known, **pose_config, mode="window", window_length=30, out_size=40)
    results = transform(clip())
    first, second = results["body_frame"]
    assert first["frames"] == [0, 6] and second["frames"] == [6, 12]
    assert first["angle"] == pytest.approx(0.0) and second["angle"] == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(results["alignment_matrix"][5], first["matrix"], atol=1e-6)
    np.testing.assert_allclose(results["alignment_matrix"][6], second["matrix"], atol=1e-6)


def test_low_score_estimates_are_skipped(pose_config):
    known = [trunk_keypoints((20, 24), (44, 24)), trunk_keypoints((32, 10), (32, 40))]
    scores = np.ones((2, 17), np.float32)
    scores[1, 5] = 0.05
    results = KnownPose(known, scores, **pose_config)(clip())
    assert results["body_frame"]["num_estimates"] == 1
    assert results["body_frame"]["angle"] == pytest.approx(0.0)


def test_no_trunk_found_falls_back_unrotated_and_warns_once(pose_config):
    known = np.stack([trunk_keypoints((20, 24), (44, 24))] * 2)
    transform = KnownPose(
        known, np.zeros((2, 17), np.float32), **pose_config, scale=2.0, out_size=40
    )
    results = clip()
    boxes = np.tile(np.array([10, 8, 50, 40], np.float32), (len(results["imgs"]), 1))
    boxes[1] = np.nan  # a frame without a mask does not move the union of the keyframes' boxes
    results.update(body_boxes=boxes, filename="baby.mp4")
    with pytest.warns(UserWarning, match=r"baby\.mp4: no pose estimate"):
        results = transform(results)
    assert "centred on the infant mask" in results["alignment_fallback"]
    assert results["body_frame"]["source"] == "fallback"
    assert results["body_frame"]["center"] == [30.0, 24.0]
    np.testing.assert_allclose(
        results["alignment_matrix"][0][:, :2], np.eye(2) * 40 / 48, atol=1e-5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = transform(dict(clip(), body_boxes=np.full((12, 4), np.nan, np.float32)))
    assert "centred on the frame" in again["alignment_fallback"]


def test_person_boxes_come_from_the_masks(pose_config):
    transform = KnownPose(np.stack([trunk_keypoints((20, 24), (44, 24))] * 2), **pose_config)
    boxes = np.full((12, 4), np.nan, np.float32)
    boxes[0] = (5, 6, 30, 40)
    transform(dict(clip(), body_boxes=boxes))
    np.testing.assert_array_equal(transform.boxes_seen[0], (5, 6, 30, 40))
    np.testing.assert_array_equal(transform.boxes_seen[1], (0, 0, 64, 48))  # no infant: whole frame


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["heatmap", "simcc"])
def test_keypoints_match_mmpose_reading_the_frame_from_disk(tiny_models, tmp_path, architecture):
    """Frames are RGB; the model must get what mmpose's loader gives (BGR): same keypoints."""
    from mmpose.apis import inference_topdown

    config, checkpoint = tiny_models[architecture]
    frame = textured_frames(1)[0]
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    box = np.array([4, 2, 60, 46], np.float32)
    transform = PoseAlignment(config=str(config), checkpoint=str(checkpoint))
    keypoints, scores = transform.estimate_keypoints([frame, frame], [box, box])
    with library_scope("mmpose"):
        reference = inference_topdown(transform.runner.model, str(path), box[None])[0]
    assert keypoints.shape == (2, 17, 2) and scores.shape == (2, 17)
    np.testing.assert_allclose(keypoints[1], reference.pred_instances.keypoints[0], atol=1e-3)
    np.testing.assert_allclose(scores[0], reference.pred_instances.keypoint_scores[0], atol=1e-4)


@pytest.mark.slow
def test_runs_end_to_end_with_a_real_model(pose_config):
    transform = PoseAlignment(**pose_config, min_keypoint_score=-np.inf, out_size=32)
    results = transform(clip())
    assert len(results["imgs"]) == 12 and results["imgs"][0].shape == (32, 32, 3)
    assert results["pose_keypoints"].shape == (2, 17, 2)
    assert results["alignment_fallback"] is None
    assert np.isfinite(results["alignment_matrix"]).all()
    with pytest.raises(ValueError, match="mode"):
        PoseAlignment(**pose_config, mode="frame")
    assert "keyframe_interval=30" in repr(transform)


def test_pose_can_run_on_the_unmasked_frames(pose_config):
    known = np.stack([trunk_keypoints((20, 24), (44, 24))] * 2)
    results = clip()
    originals = textured_frames(12, seed=5)
    transform = KnownPose(known, **pose_config, pose_input="original")
    transform(dict(results, original_imgs=originals))
    np.testing.assert_array_equal(transform.frames_seen[1], originals[6])
    with pytest.raises(KeyError, match="keep_original=True"):
        KnownPose(known, **pose_config, pose_input="original")(clip())
    with pytest.raises(ValueError, match="pose_input"):
        PoseAlignment(**pose_config, pose_input="raw")


def test_letterbox_fits_the_whole_frame_without_moving_the_infant():
    from gm_plugins.preprocess.transforms import LetterboxFrames

    frame = np.zeros((30, 60, 3), np.uint8)
    frame[10:20, 40:50] = 200  # a bright square right of centre
    results = LetterboxFrames(out_size=32)(dict(imgs=[frame, frame]))
    out = results["imgs"][0]
    assert out.shape == (32, 32, 3) and results["img_shape"] == (32, 32)
    np.testing.assert_allclose(
        results["alignment_matrix"][0], [[32 / 60, 0, 0], [0, 32 / 60, 8]], atol=1e-6
    )
    assert not out[:7].any() and not out[25:].any()  # black bars above and below
    ys, xs = np.nonzero(out[..., 0] > 100)
    assert xs.min() >= 21 and xs.max() <= 27 and ys.min() >= 13 and ys.max() <= 19
    with pytest.raises(ValueError, match="out_size"):
        LetterboxFrames(out_size=0)


class BiasedPose(PoseAlignment):
    """Finds the keypoints exactly (the brightest pixel) but reads them ``bias`` px to the
    right of the image it is given, whatever the image's orientation."""

    bias = np.array([2.0, 0.0])

    def _estimate_once(self, frames, boxes):
        points = []
        for frame in frames:
            row, col = np.unravel_index(np.argmax(frame[..., 0]), frame.shape[:2])
            points.append(np.tile(np.array([col, row]) + self.bias, (17, 1)))
        self.boxes_seen = getattr(self, "boxes_seen", []) + list(boxes)
        return np.array(points, np.float32), np.ones((len(frames), 17), np.float32)


@pytest.mark.parametrize("rotations,expected_bias", [(1, 2.0), (2, 0.0), (4, 0.0)])
def test_test_time_rotations_map_estimates_back_and_cancel_orientation_bias(
    pose_config, rotations, expected_bias
):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[30, 10] = 255  # the "keypoint": x 10, y 30
    transform = BiasedPose(**pose_config, test_time_rotations=rotations)
    box = np.array([4.0, 20.0, 20.0, 40.0], np.float32)
    keypoints, scores = transform.estimate_keypoints([frame], [box])
    np.testing.assert_allclose(keypoints[0], np.tile([10.0 + expected_bias, 30.0], (17, 1)))
    assert scores.shape == (1, 17)
    for seen in transform.boxes_seen:  # turned boxes keep their sides (swapped on odd turns)
        assert seen[2] - seen[0] in (16.0, 20.0) and seen[3] - seen[1] in (16.0, 20.0)


def test_test_time_rotations_must_be_1_2_or_4(pose_config):
    with pytest.raises(ValueError, match="test_time_rotations"):
        PoseAlignment(**pose_config, test_time_rotations=3)


def test_too_few_usable_keyframes_fall_back_like_none(pose_config):
    """One usable keyframe of four is below min_usable_fraction=0.5: the same fallback."""
    known = np.stack([trunk_keypoints((20, 24), (44, 24))] * 4)
    scores = np.zeros((4, 17), np.float32)
    scores[0] = 1.0  # only the first keyframe passes
    frames = dict(imgs=textured_frames(24, (64, 48)), frame_inds=np.arange(24) * 5)
    trusting = KnownPose(known, scores, **pose_config)(dict(frames))
    assert trusting["alignment_fallback"] is None
    assert trusting["alignment_usable_fraction"] == pytest.approx(0.25)
    strict = KnownPose(known, scores, **pose_config, min_usable_fraction=0.5)
    with pytest.warns(UserWarning, match=r"only 1 of 4 keyframes"):
        results = strict(dict(frames, filename="few.mp4"))
    assert "min_usable_fraction=0.5" in results["alignment_fallback"]
    assert results["body_frame"]["source"] == "fallback"
    assert results["alignment_usable_fraction"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="min_usable_fraction"):
        KnownPose(known, scores, **pose_config, min_usable_fraction=1.5)
