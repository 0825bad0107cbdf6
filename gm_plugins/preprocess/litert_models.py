"""Pretrained person models that ship inside a PyPI package, run with the LiteRT runtime.

The ``mediapipe`` wheel carries TensorFlow Lite models trained on real people: the BlazePose
landmark model (``pose_landmark_full.tflite``, 33 landmarks) and the selfie segmentation model
(``selfie_segmentation.tflite``). ``mediapipe`` itself is never imported (it pins numpy < 2 and
protobuf < 5): it is installed with ``--no-deps`` only for these files, which
:func:`packaged_model_path` finds through the package's import spec, and ``ai-edge-litert`` runs
them.

:class:`MediaPipeSelfieSegmentation` gives body probability maps for
:class:`~gm_plugins.preprocess.transforms.BackgroundRemoval` (``model=dict(type=...)``);
:class:`MediaPipePoseLandmarks` gives COCO-17 keypoints and scores for
:class:`~gm_plugins.preprocess.transforms.PoseAlignment`. Both are registered in
:data:`PACKAGED_MODELS` and built from a chain config's ``model`` dict by
:func:`build_packaged_model`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
from mmengine.registry import Registry

#: Registered models whose weights come inside an installed package (built by config ``type``).
PACKAGED_MODELS = Registry("packaged preprocessing model")

#: The install line that provides the models and their runtime (requirements/packaged_models.txt).
INSTALL_HINT = (
    "pip install --no-deps mediapipe==0.10.21 && pip install ai-edge-litert==2.3.0 "
    "(or `make install`, which runs requirements/install.sh)"
)

#: The model files inside the mediapipe wheel, relative to its package folder.
MEDIAPIPE_FILES = {
    "pose_landmark_full": "modules/pose_landmark/pose_landmark_full.tflite",
    "selfie_segmentation": "modules/selfie_segmentation/selfie_segmentation.tflite",
}

#: BlazePose landmark index of each COCO-17 keypoint (nose, eyes, ears, shoulders, elbows,
#: wrists, hips, knees, ankles; left before right, as in COCO).
BLAZEPOSE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
BLAZEPOSE_LANDMARKS = 33


class PackagedModelError(RuntimeError):
    """A packaged model or its runtime is not installed; the message says what to install."""


def packaged_model_path(name: str, package: str = "mediapipe") -> Path:
    """Path of a model file shipped in ``package`` (a key of :data:`MEDIAPIPE_FILES`).

    The package is located through its import spec, without importing it.

    Raises:
        KeyError: an unknown model name.
        PackagedModelError: the package or the file is missing.
    """
    if name not in MEDIAPIPE_FILES:
        raise KeyError(f"unknown packaged model {name!r}: choose one of {sorted(MEDIAPIPE_FILES)}")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise PackagedModelError(f"the {package!r} package is not installed: {INSTALL_HINT}")
    path = Path(spec.origin).parent / MEDIAPIPE_FILES[name]
    if not path.is_file():
        raise PackagedModelError(
            f"{path} is missing from the installed {package!r} package; reinstall it: "
            f"{INSTALL_HINT}"
        )
    return path


def check_litert_runtime() -> None:
    """Raise PackagedModelError (with the install line) when no LiteRT runtime is installed."""
    if not any(importlib.util.find_spec(name) for name in ("ai_edge_litert", "tflite_runtime")):
        raise PackagedModelError(
            f"no LiteRT runtime (ai_edge_litert or tflite_runtime) is installed: {INSTALL_HINT}"
        )


def litert_interpreter(path: str | os.PathLike, num_threads: int = 1):
    """A LiteRT interpreter of a ``.tflite`` file with its tensors allocated.

    Uses ``ai_edge_litert``, else ``tflite_runtime``.

    Raises:
        PackagedModelError: neither runtime is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as error:
            raise PackagedModelError(
                f"no LiteRT runtime to run {path} (ai_edge_litert or tflite_runtime): "
                f"{INSTALL_HINT}"
            ) from error
    interpreter = Interpreter(model_path=os.fspath(path), num_threads=max(1, int(num_threads)))
    interpreter.allocate_tensors()
    return interpreter


def sigmoid(values: np.ndarray) -> np.ndarray:
    """Logistic function of an array (float32, no overflow warnings)."""
    values = np.asarray(values, np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * values))).astype(np.float32)


def blazepose_to_coco17(landmarks: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose landmarks (..., 33 or more, >= 2) and scores (..., 33 or more) -> COCO-17.

    Returns float32 keypoints (..., 17, 2) (x, y of each landmark) and scores (..., 17).
    """
    landmarks = np.asarray(landmarks)
    scores = np.asarray(scores)
    if landmarks.ndim < 2 or landmarks.shape[-2] < BLAZEPOSE_LANDMARKS or landmarks.shape[-1] < 2:
        raise ValueError(f"landmarks must be (..., >=33, >=2), got shape {landmarks.shape}")
    if scores.shape != landmarks.shape[:-1]:
        raise ValueError(f"scores {scores.shape} must match landmarks {landmarks.shape[:-1]}")
    index = list(BLAZEPOSE_TO_COCO17)
    return (
        landmarks[..., index, :2].astype(np.float32),
        scores[..., index].astype(np.float32),
    )


def letterbox_matrix(width: int, height: int, side: int) -> np.ndarray:
    """(2, 3) matrix fitting a ``width`` x ``height`` image into a ``side`` square, centred."""
    scale = side / max(width, height)
    return np.array(
        [[scale, 0.0, (side - scale * width) / 2.0], [0.0, scale, (side - scale * height) / 2.0]],
        np.float64,
    )


def roi_matrix(box: np.ndarray, angle: float, side: int, expand: float) -> np.ndarray:
    """(2, 3) matrix from the pixels of a ``side`` square crop to image pixels.

    The crop is the square around the centre of ``box`` (x1, y1, x2, y2) whose side is
    ``expand`` times the box's long side, turned by ``angle`` radians: the crop's "up" is the
    image direction (sin a, -cos a) (the image's y axis points down), so the model sees the
    image turned by -``angle``.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    centre = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
    scale = max(x2 - x1, y2 - y1, 1.0) * expand / side
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    offset = centre - linear @ np.array([side / 2.0, side / 2.0])
    return np.concatenate([linear, offset[:, None]], 1)


class _LiteRTModel:
    """A packaged ``.tflite`` model, loaded on first use (once per instance and process)."""

    file: str = ""
    role: str = ""

    def __init__(self, num_threads: int | None = None) -> None:
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be None or >= 1, got {num_threads}")
        self.num_threads = num_threads
        self._interpreter = None
        packaged_model_path(self.file)  # a missing package fails here, when the chain is built
        check_litert_runtime()

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _interpreter=None)  # workers load their own

    @property
    def path(self) -> Path:
        """The model file inside the installed package."""
        return packaged_model_path(self.file)

    @property
    def interpreter(self):
        """The LiteRT interpreter (``num_threads`` None: as many threads as torch uses)."""
        if self._interpreter is None:
            threads = self.num_threads
            if threads is None:
                import torch

                threads = torch.get_num_threads()
            self._interpreter = litert_interpreter(self.path, threads)
        return self._interpreter

    @property
    def input_side(self) -> int:
        """Side of the model's square input."""
        return int(self.interpreter.get_input_details()[0]["shape"][1])

    def invoke(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """One float32 (side, side, 3) RGB image in [0, 1] -> outputs by name (batch dim off)."""
        interpreter = self.interpreter
        interpreter.set_tensor(
            interpreter.get_input_details()[0]["index"],
            np.ascontiguousarray(image, np.float32)[None],
        )
        interpreter.invoke()
        return {
            detail["name"]: interpreter.get_tensor(detail["index"])[0]
            for detail in interpreter.get_output_details()
        }


def _check_rotations(rotations: int) -> None:
    if rotations not in (1, 2, 4):
        raise ValueError(f"rotations={rotations!r}: choose 1, 2 or 4")


@PACKAGED_MODELS.register_module()
class MediaPipeSelfieSegmentation(_LiteRTModel):
    """Person probability maps from MediaPipe's selfie segmentation model (256 x 256 input).

    Each frame is fitted into the model's square (aspect kept, black bars) and the map is
    mapped back to the frame. The model was trained on upright people; with ``rotations`` 2
    or 4 the square is also turned by 180 (and 90, 270) degrees and the per-pixel maximum of
    the maps is kept, since infants lie in any orientation.

    Args:
        rotations (int): 1, 2 or 4 orientations per frame. Defaults to 1.
        num_threads (int, optional): LiteRT threads (None: as many as torch). Defaults to None.
    """

    file = "selfie_segmentation"
    role = "segmentation"

    def __init__(self, rotations: int = 1, num_threads: int | None = None) -> None:
        _check_rotations(rotations)
        super().__init__(num_threads)
        self.rotations = rotations

    def __call__(self, frames: list[np.ndarray]) -> np.ndarray:
        """RGB (H, W, 3) uint8 frames of one size -> float32 (N, H, W) person probability."""
        if not frames:
            raise ValueError("no frames")
        side = self.input_side
        maps = []
        for frame in frames:
            height, width = frame.shape[:2]
            matrix = letterbox_matrix(width, height, side)
            square = cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_LINEAR)
            square = square.astype(np.float32) / 255.0
            probability = None
            for turn in range(0, 4, 4 // self.rotations):
                (output,) = self.invoke(np.rot90(square, turn)).values()
                turned_back = np.rot90(output[..., 0], -turn)
                probability = (
                    turned_back if probability is None else np.maximum(probability, turned_back)
                )
            maps.append(
                cv2.warpAffine(
                    np.ascontiguousarray(probability, np.float32),
                    matrix,
                    (width, height),
                    flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                )
            )
        return np.clip(np.stack(maps), 0.0, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rotations={self.rotations}, num_threads={self.num_threads})"


@PACKAGED_MODELS.register_module()
class MediaPipePoseLandmarks(_LiteRTModel):
    """COCO-17 keypoints from MediaPipe's BlazePose landmark model (full, 256 x 256 input).

    The model expects one person, upright, centred in a square crop (MediaPipe finds that
    crop with its detector). Here the crop is the square around each frame's person box (the
    body mask's box, as for the mmpose models) enlarged by ``roi_scale``; infants lie in any
    orientation, so the crop is also turned by 90, 180, 270 degrees (``rotations``) and the
    turn with the highest pose-presence output wins. With ``refine`` the crop is then turned
    once more, by the angle that puts the trunk found (hips to shoulders) upright, as
    MediaPipe's detector turns its crop, and the model runs again on it (on 40 synthetic
    keyframes: PCK of the trunk 0.63 -> 0.78). The 33 landmarks are mapped back to frame
    pixels and reduced to COCO-17 (:data:`BLAZEPOSE_TO_COCO17`); each keypoint's score is the
    product of its visibility and presence probabilities and of the pose presence.

    Args:
        rotations (int): 1, 2 or 4 crop orientations per frame. Defaults to 4.
        roi_scale (float): crop side in long sides of the person box. Defaults to 1.25.
        refine (bool): a second pass with the trunk upright. Defaults to True.
        num_threads (int, optional): LiteRT threads (None: as many as torch). Defaults to None.
    """

    file = "pose_landmark_full"
    role = "pose"

    def __init__(
        self,
        rotations: int = 4,
        roi_scale: float = 1.25,
        refine: bool = True,
        num_threads: int | None = None,
    ) -> None:
        _check_rotations(rotations)
        if roi_scale <= 0:
            raise ValueError(f"roi_scale must be > 0, got {roi_scale}")
        super().__init__(num_threads)
        self.rotations = rotations
        self.roi_scale = roi_scale
        self.refine = refine

    def landmarks(self, frame: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """One RGB frame and person box -> BlazePose (33, 2) frame pixels, (33,) scores and the
        pose presence of the winning orientation."""
        side = self.input_side
        best = None
        for turn in range(0, 4, 4 // self.rotations):
            found = self._run_crop(frame, roi_matrix(box, np.pi / 2 * turn, side, self.roi_scale))
            if best is None or found[2] > best[2]:
                best = found
        if self.refine:
            points = best[0]
            trunk = points[[11, 12]].mean(0) - points[[23, 24]].mean(0)  # hips -> shoulders
            if np.all(np.isfinite(trunk)) and np.hypot(*trunk) > 0:
                angle = float(np.arctan2(trunk[0], -trunk[1]))
                best = self._run_crop(frame, roi_matrix(box, angle, side, self.roi_scale))
        points, raw, presence = best
        scores = sigmoid(raw[:, 3]) * sigmoid(raw[:, 4]) * presence
        return points.astype(np.float32), scores.astype(np.float32), float(presence)

    def _run_crop(
        self, frame: np.ndarray, matrix: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The model on the crop that ``matrix`` maps into ``frame`` -> (33, 2) landmarks in
        frame pixels, raw outputs (33, 5) and the pose presence."""
        side = self.input_side
        crop = cv2.warpAffine(
            frame, matrix, (side, side), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
        )
        raw, presence = _pose_outputs(self.invoke(crop.astype(np.float32) / 255.0))
        raw = raw[:BLAZEPOSE_LANDMARKS]
        return raw[:, :2] @ matrix[:, :2].T + matrix[:, 2], raw, presence

    def __call__(
        self, frames: list[np.ndarray], boxes: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """RGB frames and (x1, y1, x2, y2) person boxes -> float32 (M, 17, 2), (M, 17)."""
        if len(frames) != len(boxes):
            raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
        if not frames:
            return np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32)
        found = [self.landmarks(frame, box)[:2] for frame, box in zip(frames, boxes, strict=True)]
        return blazepose_to_coco17(
            np.stack([points for points, _ in found]), np.stack([scores for _, scores in found])
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rotations={self.rotations}, roi_scale={self.roi_scale}, "
            f"refine={self.refine}, num_threads={self.num_threads})"
        )


def _pose_outputs(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """The landmark model's outputs -> raw landmarks (39, 5): x, y, z, visibility and presence
    logits, and the pose presence probability."""
    landmarks = next(value for value in outputs.values() if value.shape == (195,))
    flag = next(value for value in outputs.values() if value.shape == (1,))
    return landmarks.reshape(39, 5), float(np.clip(flag[0], 0.0, 1.0))


def build_packaged_model(cfg: dict, kind: str) -> object:
    """A registered packaged model from its config dict (``type`` + arguments).

    Args:
        cfg: e.g. ``dict(type='MediaPipePoseLandmarks', rotations=4)``.
        kind: 'segmentation' or 'pose', the role the step needs.

    Raises:
        ValueError: no ``type``, an unregistered type, or a model of the other role.
    """
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ValueError(f"model must be a dict with a 'type', got {cfg!r}")
    model_type = PACKAGED_MODELS.get(cfg["type"])
    if model_type is None:
        raise ValueError(
            f"model type {cfg['type']!r} is not registered: choose one of "
            f"{sorted(PACKAGED_MODELS.module_dict)}"
        )
    if getattr(model_type, "role", None) != kind:
        raise ValueError(f"model type {cfg['type']!r} is not a {kind} model")
    arguments = {key: value for key, value in cfg.items() if key != "type"}
    return model_type(**arguments)
