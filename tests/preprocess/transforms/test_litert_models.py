"""Packaged pretrained models (MediaPipe's, run with LiteRT) and the pretrained-checkpoint route.

The LiteRT runtime and the mediapipe wheel's model files are installed by ``make install``
(requirements/runtime.txt, requirements/packaged_models.txt): these tests fail without them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from gm_plugins.preprocess import geometry, model_runners
from gm_plugins.preprocess import litert_models as lm
from gm_plugins.preprocess.chain import load_preprocess_pipeline
from gm_plugins.preprocess.streaming import build_preprocess_pipeline, preprocess_video
from gm_plugins.preprocess.transforms import BackgroundRemoval, PoseAlignment
from tests.preprocess.transforms.model_configs import textured_frames, write_video

ROOT = Path(__file__).resolve().parents[3]
CHAIN = (
    ROOT
    / "configs/preprocess/preprocess_mediapipe-seg_mediapipe-pose_farneback-k30-s3.75-112_real.py"
)
SIDE = 256  # the packaged models' input side

# ---------------------------------------------------------------------------------------------
# The landmark mapping


def test_blazepose_to_coco17_picks_the_coco_joints_in_coco_order():
    landmarks = np.zeros((2, 39, 5), np.float32)
    landmarks[..., 0] = np.arange(39)  # x = BlazePose index
    landmarks[..., 1] = 1000 + np.arange(39)
    landmarks[1, ..., 0] += 100  # a second frame, shifted
    scores = np.tile(np.arange(39, dtype=np.float32) / 100, (2, 1))
    keypoints, coco_scores = lm.blazepose_to_coco17(landmarks, scores)
    expected = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    assert keypoints.shape == (2, 17, 2) and coco_scores.shape == (2, 17)
    assert keypoints[0, :, 0].tolist() == expected
    assert keypoints[0, :, 1].tolist() == [1000 + i for i in expected]
    assert keypoints[1, :, 0].tolist() == [100 + i for i in expected]
    np.testing.assert_allclose(coco_scores[0], np.array(expected) / 100, rtol=1e-6)
    # COCO's left shoulder (5) is BlazePose's left shoulder (11), its right hip (12) is 24
    assert keypoints[0, 5, 0] == 11 and keypoints[0, 12, 0] == 24


def test_blazepose_to_coco17_rejects_other_shapes():
    with pytest.raises(ValueError, match=">=33"):
        lm.blazepose_to_coco17(np.zeros((17, 2)), np.zeros(17))
    with pytest.raises(ValueError, match="must match"):
        lm.blazepose_to_coco17(np.zeros((33, 3)), np.zeros(17))


def test_roi_matrix_centres_scales_and_turns_the_crop():
    box = np.array([100, 50, 200, 250], np.float32)  # centre (150, 150), long side 200
    upright = lm.roi_matrix(box, 0.0, SIDE, 1.25)
    np.testing.assert_allclose(upright @ [SIDE / 2, SIDE / 2, 1], [150, 150], atol=1e-9)
    np.testing.assert_allclose(upright[:, :2], np.eye(2) * 250 / SIDE, atol=1e-12)
    turned = lm.roi_matrix(box, np.pi / 2, SIDE, 1.25)
    up = turned[:, :2] @ [0, -1]  # the crop's "up" in the image
    np.testing.assert_allclose(up / np.linalg.norm(up), [1, 0], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# The pose model's crop, orientation search and mapping back, with a stand-in network that reads
# the joints off a drawn figure: a rendered pose whose joints are known exactly.

JOINT_COLOURS = {  # BlazePose index -> colour of its dot
    0: (255, 255, 255),  # nose
    11: (255, 0, 0),  # left shoulder
    12: (0, 255, 0),  # right shoulder
    23: (0, 0, 255),  # left hip
    24: (255, 255, 0),  # right hip
}


def draw_figure(angle_deg: float, size=(320, 240)) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """A black frame with coloured joint dots of a body turned by ``angle_deg``."""
    upright = {0: (0, -70), 11: (18, -40), 12: (-18, -40), 23: (12, 20), 24: (-12, 20)}
    angle = np.radians(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([size[0] / 2 + 7, size[1] / 2 - 5])
    joints = {i: centre + rotation @ np.array(p, float) for i, p in upright.items()}
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    for index, point in joints.items():
        cv2.circle(frame, tuple(np.round(point).astype(int)), 4, JOINT_COLOURS[index], -1)
    return frame, joints


class DotReader:
    """Stands in for the landmark network: finds the coloured dots in the crop (crop pixels)
    and is sure of a person only when the shoulders are above the hips (as trained)."""

    def __init__(self) -> None:
        self.calls = 0

    def get_input_details(self):
        return [dict(shape=np.array([1, SIDE, SIDE, 3]))]

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        pixels = image.reshape(-1, 3)
        bright = pixels.max(1) > 0.3
        colours = np.array(list(JOINT_COLOURS.values()), np.float32) / 255
        directions = colours / np.linalg.norm(colours, axis=1, keepdims=True)
        nearest = np.argmax(pixels @ directions.T, 1)
        ys, xs = np.divmod(np.arange(len(pixels)), SIDE)
        raw = np.zeros((39, 5), np.float32)
        raw[:, 3:] = 8.0  # visible and present
        for k, index in enumerate(JOINT_COLOURS):
            mine = bright & (nearest == k)
            weight = pixels[mine].max(1)
            raw[index, :2] = [np.average(xs[mine] + 0.5, weights=weight) - 0.5,
                              np.average(ys[mine] + 0.5, weights=weight) - 0.5]  # fmt: skip
        trunk = raw[[11, 12], :2].mean(0) - raw[[23, 24], :2].mean(0)
        upright = -trunk[1] / np.linalg.norm(trunk)
        presence = 0.99 if upright > 0.9 else 0.2 * max(upright, 0.0) + 0.05
        return {"Identity": raw.reshape(195), "Identity_1": np.array([presence], np.float32)}


def reader_model(**kwargs) -> tuple[lm.MediaPipePoseLandmarks, DotReader]:
    model = lm.MediaPipePoseLandmarks(**kwargs)
    reader = DotReader()
    model._interpreter = reader  # input_side reads it; invoke is replaced below
    model.invoke = reader
    return model, reader


@pytest.mark.parametrize("angle", [0, 37, 90, 151, 200, 290])
def test_pose_crop_finds_drawn_joints_in_any_orientation(angle):
    frame, joints = draw_figure(angle)
    body = frame.max(2) > 0
    box = geometry_box(body)
    model, reader = reader_model(rotations=4, refine=True)
    keypoints, scores = model([frame], [box])
    assert keypoints.shape == (1, 17, 2) and scores.shape == (1, 17)
    assert reader.calls == 5  # four quarter turns, then the refined crop
    coco = {0: 0, 11: 5, 12: 6, 23: 11, 24: 12}
    for blaze, index in coco.items():
        error = np.linalg.norm(keypoints[0, index] - joints[blaze])
        assert error < 1.5, (blaze, keypoints[0, index], joints[blaze])
    assert np.all(scores[0, list(coco.values())] > 0.95)  # the refined crop is upright


def test_pose_crop_without_orientation_search_scores_an_upside_down_body_low():
    frame, _ = draw_figure(180)
    model, _ = reader_model(rotations=1, refine=False)
    _, scores = model([frame], [geometry_box(frame.max(2) > 0)])
    assert scores[0, [5, 6, 11, 12]].max() < 0.1  # PoseAlignment's 0.3 would not trust it


def geometry_box(body: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(body)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


# ---------------------------------------------------------------------------------------------
# The real models on a real photograph


@pytest.fixture(scope="module")
def portrait() -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's sample photograph of Grace Hopper (head and shoulders, 512 x 600) at the top
    of a black canvas three times as tall, so the landmark model sees a person's upper body in
    a whole-person crop; and the box of the person's column."""
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    height, width = image.shape[:2]
    canvas = np.pad(image[..., ::-1], ((0, 2 * height), (width // 2, width // 2), (0, 0)))
    box = np.array([width // 2, 0, width // 2 + width, 3 * height], np.float32)
    return np.ascontiguousarray(canvas), box


def test_packaged_model_files_are_installed_and_load_in_litert():
    for name in lm.MEDIAPIPE_FILES:
        path = lm.packaged_model_path(name)
        interpreter = lm.litert_interpreter(path)
        assert interpreter.get_input_details()[0]["shape"].tolist() == [1, SIDE, SIDE, 3]


def test_missing_package_names_the_install_line():
    with pytest.raises(lm.PackagedModelError, match="pip install --no-deps mediapipe"):
        lm.packaged_model_path("pose_landmark_full", package="no_such_package_for_gm_plugins")
    with pytest.raises(KeyError, match="selfie_segmentation"):
        lm.packaged_model_path("hand")


def test_a_chain_step_without_the_packages_fails_when_built(monkeypatch):
    real_find_spec = lm.importlib.util.find_spec
    monkeypatch.setattr(
        lm.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "mediapipe" else real_find_spec(name, *args),
    )
    with pytest.raises(lm.PackagedModelError, match=r"mediapipe.* is not installed"):
        PoseAlignment(model=dict(type="MediaPipePoseLandmarks"))


def test_landmark_model_finds_face_and_shoulders_on_a_photograph(portrait):
    canvas, box = portrait
    model = lm.MediaPipePoseLandmarks(num_threads=1)
    keypoints, scores = model([canvas], [box])
    assert keypoints.shape == (1, 17, 2) and keypoints.dtype == np.float32
    assert scores.shape == (1, 17) and np.all((scores >= 0) & (scores <= 1))
    nose, left_eye, right_eye = keypoints[0, 0], keypoints[0, 1], keypoints[0, 2]
    left_shoulder, right_shoulder = keypoints[0, 5], keypoints[0, 6]
    # she faces the camera: her left is the image's right
    assert right_eye[0] < nose[0] < left_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < 300  # eyes above the nose, in the face
    assert right_shoulder[0] < box[0] + 200 and left_shoulder[0] > box[0] + 350
    assert min(left_shoulder[1], right_shoulder[1]) > nose[1] + 100
    assert np.all(scores[0, [0, 1, 2, 5, 6]] > 0.8)
    # a quarter-turned photograph gives the same joints (orientation search + upright crop)
    height, width = canvas.shape[:2]
    turned = np.ascontiguousarray(np.rot90(canvas, 1))
    turned_box = geometry.rotate90_box(box, 1, (width, height))
    turned_keypoints, _ = model([turned], [turned_box])
    back = geometry.rotate90_points(turned_keypoints[0], 3, (height, width))
    assert np.abs(back[[0, 1, 2, 5, 6]] - keypoints[0, [0, 1, 2, 5, 6]]).max() < 8


def test_selfie_segmentation_covers_the_person_of_a_photograph(portrait):
    canvas, box = portrait
    masks = lm.MediaPipeSelfieSegmentation(num_threads=1)([canvas])
    assert masks.shape == (1, *canvas.shape[:2]) and masks.dtype == np.float32
    assert masks.min() >= 0 and masks.max() <= 1
    x0 = int(box[0])
    assert masks[0, 200:300, x0 + 200 : x0 + 300].mean() > 0.9  # her face
    assert masks[0, 450:580, x0 + 100 : x0 + 400].mean() > 0.9  # her uniform
    assert masks[0, 700:].mean() < 0.05 and masks[0, :, : x0 - 20].mean() < 0.05  # black canvas


# ---------------------------------------------------------------------------------------------
# The transforms and the chain config


def test_transforms_take_a_packaged_model_or_a_config_not_both(tiny_models):
    seg_config, _ = tiny_models["unet"]
    with pytest.raises(ValueError, match="either config"):
        BackgroundRemoval(config=str(seg_config), model=dict(type="MediaPipeSelfieSegmentation"))
    with pytest.raises(ValueError, match="needs config="):
        BackgroundRemoval()
    with pytest.raises(ValueError, match="needs config="):
        PoseAlignment()
    with pytest.raises(ValueError, match="not a pose model"):
        PoseAlignment(model=dict(type="MediaPipeSelfieSegmentation"))
    with pytest.raises(ValueError, match="not registered"):
        BackgroundRemoval(model=dict(type="NoSuchModel"))
    with pytest.raises(TypeError):
        PoseAlignment(model=dict(type="MediaPipePoseLandmarks", no_such_argument=1))


def test_background_removal_with_the_packaged_model_masks_the_frames(portrait):
    canvas, _ = portrait
    transform = BackgroundRemoval(model=dict(type="MediaPipeSelfieSegmentation"), max_side=640)
    assert transform.fast_runner is None  # the mmseg fast path does not apply
    assert transform.runner is transform._packaged  # what tools load before timing
    results = transform(dict(imgs=[canvas]))
    assert results["body_masks"].shape == (1, *canvas.shape[:2])
    box = results["body_boxes"][0]
    assert 256 - 20 < box[0] < 256 + 20 and box[2] > 256 + 480  # the photograph's columns
    assert results["imgs"][0][1000:].max() == 0


def test_mediapipe_chain_config_builds_and_runs_on_a_tiny_video(tmp_path):
    steps = load_preprocess_pipeline(CHAIN).steps
    chain = build_preprocess_pipeline(steps)
    names = [type(t).__name__ for t in chain.transforms]
    assert names == ["DecodeFrames", "BackgroundRemoval", "PoseAlignment", "OpticalFlow"]
    background, alignment = chain.transforms[1], chain.transforms[2]
    assert isinstance(background._packaged, lm.MediaPipeSelfieSegmentation)
    assert isinstance(alignment._packaged, lm.MediaPipePoseLandmarks)
    video = write_video(tmp_path / "clip.mp4", textured_frames(40, (96, 72)))
    results = preprocess_video(chain, str(video))
    count = len(results["frame_inds"])
    assert count == 8  # 40 frames at 30 fps sampled at 6 fps
    assert np.stack(results["imgs"]).shape == (count, 112, 112, 3)
    assert results["pose_keypoints"].shape == (2, 17, 2)  # keyframes at source frames 0 and 30
    assert results["pose_scores"].shape == (2, 17)
    assert results["alignment_matrix"].shape == (count, 2, 3)


# ---------------------------------------------------------------------------------------------
# OpenMMLab models given by config + checkpoint: a local file loads, a URL is refused clearly


def test_chain_loads_a_local_pretrained_checkpoint_by_path(tmp_path, tiny_models, tiny_video):
    pose_config, pose_checkpoint = tiny_models["heatmap"]
    seg_config, seg_checkpoint = tiny_models["unet"]
    # "pretrained" weights: distinct from a fresh random initialisation
    state = torch.load(pose_checkpoint, map_location="cpu", weights_only=False)
    weights = {k: torch.full_like(v, 0.01) if v.is_floating_point() else v
               for k, v in state["state_dict"].items()}  # fmt: skip
    pretrained = tmp_path / "downloaded_pose.pth"
    torch.save(dict(state, state_dict=weights), pretrained)
    chain_path = tmp_path / "preprocess_pretrained.py"
    Config(
        dict(
            default_scope="mmaction",
            custom_imports=dict(imports=["gm_plugins"], allow_failed_imports=False),
            preprocess_pipeline=[
                dict(type="DecodeFrames", target_fps=10),
                dict(
                    type="BackgroundRemoval", config=str(seg_config), checkpoint=str(seg_checkpoint)
                ),
                dict(
                    type="PoseAlignment",
                    config=str(pose_config),
                    checkpoint=str(pretrained),
                    keyframe_interval=6,
                    out_size=24,
                ),
                dict(type="OpticalFlow"),
            ],
        )
    ).dump(str(chain_path))
    model_runners.clear_model_cache()
    chain = build_preprocess_pipeline(load_preprocess_pipeline(chain_path).steps)
    results = preprocess_video(chain, str(tiny_video))
    assert results["pose_keypoints"].shape[1:] == (17, 2)
    loaded = chain.transforms[2].runner.model.state_dict()
    for key, value in weights.items():
        if value.is_floating_point():
            assert torch.equal(loaded[key].cpu(), value), key
    model_runners.clear_model_cache()


def test_a_checkpoint_url_is_refused_with_the_download_step(tiny_models):
    pose_config, _ = tiny_models["heatmap"]
    url = "https://download.openmmlab.com/mmpose/v1/some_model.pth"
    with pytest.raises(FileNotFoundError, match="Download it once") as error:
        PoseAlignment(config=str(pose_config), checkpoint=url)
    assert url in str(error.value)


def test_rtmpose_config_shipped_with_mmpose_runs_in_pose_alignment(tmp_path):
    # a one-line local config inheriting the config inside the mmpose wheel, as the guide shows
    config = tmp_path / "rtmpose-m_coco-256x192.py"
    config.write_text(
        '_base_ = ["mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py"]\n'
    )
    transform = PoseAlignment(config=str(config), out_size=32)  # random weights: shapes only
    assert type(transform.runner.model.head).__name__ == "RTMCCHead"
    results = transform(dict(imgs=textured_frames(2, (160, 120)), frame_inds=np.arange(2) * 5))
    assert results["pose_keypoints"].shape == (1, 17, 2)
    assert results["imgs"][0].shape == (32, 32, 3)
    model_runners.clear_model_cache()
