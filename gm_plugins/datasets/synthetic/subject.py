"""One synthetic infant: specification, ground truth and frame-by-frame rendering."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import cv2
import numpy as np

from .body import (
    OCCLUDED,
    VISIBLE,
    BodyPainter,
    Camera,
    coco_keypoints,
    forward_kinematics,
    sample_body_shape,
    to_pixels,
)
from .distractors import DISTRACTORS
from .motion import GM_CLASSES, joint_trajectories
from .scenes import Sensor, choose_environment, make_background, sample_scene

# Roughly the infant's reach from the trunk centre, in trunk lengths (head top, flexed feet).
BODY_RADIUS = 1.45
_STREAMS = ("environment", "body", "motion", "camera", "scene")


@dataclass(frozen=True)
class SubjectSpec:
    """What makes a subject reproducible: its id, class, environment and seed path.

    The random streams come from ``SeedSequence(seed, spawn_key=(group, index))``, so a subject is
    the same whichever process generates it and in whichever order.
    """

    subject_id: str
    label: str
    environment: str
    seed: int
    group: int
    index: int

    def streams(self) -> dict[str, np.random.Generator]:
        children = np.random.SeedSequence(self.seed, spawn_key=(self.group, self.index)).spawn(
            len(_STREAMS)
        )
        return {
            name: np.random.default_rng(child)
            for name, child in zip(_STREAMS, children, strict=True)
        }


def make_specs(
    count: int, seed: int, confound: float, group: int = 0, prefix: str = "s"
) -> list[SubjectSpec]:
    """Class-balanced subjects ``<prefix>0000``... in shuffled class order.

    Args:
        count: number of subjects.
        seed: dataset seed.
        confound: probability that a subject's environment is drawn from its class's families.
        group: separates subject sets of one seed (0 dataset, 1 preprocessing frames, 2 previews).
        prefix: subject id prefix.
    """
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(group,)))
    labels = order.permutation(np.resize(np.array(GM_CLASSES), count))
    specs = []
    for index, label in enumerate(labels):
        spec = SubjectSpec(f"{prefix}{index:04d}", str(label), "", seed, group, index)
        environment = choose_environment(spec.label, confound, spec.streams()["environment"])
        specs.append(dataclasses.replace(spec, environment=environment))
    return specs


def _sample_camera(rng: np.random.Generator, size: tuple[int, int]) -> Camera:
    scale = min(size) * rng.uniform(0.21, 0.29)
    margin = BODY_RADIUS * scale
    offset = [
        rng.uniform(margin, extent - margin) if extent > 2 * margin else extent / 2
        for extent in size
    ]
    return Camera(
        scale=float(scale),
        angle=float(rng.uniform(0, 2 * np.pi)),
        offset=(float(offset[0]), float(offset[1])),
    )


class SyntheticSubject:
    """Ground truth and renderer of one subject.

    Args:
        spec: the subject.
        size: frame size (W, H).
        fps: frames per second.
        num_frames: T.

    Attributes:
        keypoints: (T, 17, 3) float32 COCO-17 pixel x, y, visibility (2 seen, 1 hidden, 0 outside).
    """

    def __init__(
        self, spec: SubjectSpec, size: tuple[int, int], fps: float, num_frames: int
    ) -> None:
        rng = spec.streams()
        self.spec, self.size, self.fps, self.num_frames = spec, tuple(size), fps, num_frames
        self.shape = sample_body_shape(rng["body"])
        pose = joint_trajectories(spec.label, num_frames, fps, rng["motion"])
        self.camera = _sample_camera(rng["camera"], self.size)
        pixels = to_pixels(forward_kinematics(self.shape, pose), self.camera)
        self.scene = sample_scene(spec.environment, rng["scene"])
        background = make_background(self.scene, self.size, rng["scene"])
        self.sensor = Sensor(self.scene, self.size, rng["scene"], num_frames, fps)
        centre, radius = np.asarray(self.camera.offset), BODY_RADIUS * self.camera.scale
        self.distractors = [
            DISTRACTORS[kind](rng["scene"], num_frames, fps, self.size, centre, radius)
            for kind in self.scene.distractors
        ]
        self.keypoints = coco_keypoints(pixels, self.shape, self.camera, self.size)
        for distractor in self.distractors:
            hidden = distractor.covers(self.keypoints[..., :2]) & (
                self.keypoints[..., 2] == VISIBLE
            )
            self.keypoints[..., 2][hidden] = OCCLUDED
        self.painter = BodyPainter(self.shape, pixels, self.camera.scale)
        self._background = np.dstack([background, np.zeros(background.shape[:2], np.uint8)])
        self._canvas = np.empty_like(self._background)

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t``: RGB image (H, W, 3) uint8 and infant mask (H, W) uint8 in {0, 1}."""
        canvas = self._canvas
        np.copyto(canvas, self._background)
        self.painter.draw(canvas, t)
        for distractor in self.distractors:
            distractor.draw(canvas, t)
        rgb = cv2.cvtColor(canvas, cv2.COLOR_RGBA2RGB)
        mask = (canvas[..., 3] >= 128).view(np.uint8)
        self.sensor.expose(rgb, t)
        return rgb, mask

    def clean_render(self, t: int, background_rgb: tuple[int, int, int]) -> np.ndarray:
        """Frame ``t`` on a plain background, no distractors, lighting or noise, (H, W, 3)."""
        canvas = np.empty_like(self._background)
        canvas[:] = (*background_rgb, 0)
        self.painter.draw(canvas, t)
        return cv2.cvtColor(canvas, cv2.COLOR_RGBA2RGB)

    def describe(self) -> dict:
        """JSON-ready description: class, environment, camera, scene and appearance parameters."""
        return {
            "subject_id": self.spec.subject_id,
            "label": self.spec.label,
            "environment": self.spec.environment,
            "fps": self.fps,
            "size": list(self.size),
            "camera": dataclasses.asdict(self.camera),
            "scene": dataclasses.asdict(self.scene),
            "body": dataclasses.asdict(self.shape),
        }

    def ground_truth(self, masks: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays for ``gt/<subject_id>.npz``; ``masks`` is (T, H, W) uint8."""
        return {
            "keypoints": self.keypoints,
            "masks": masks,
            "fps": np.float32(self.fps),
            "label": np.array(self.spec.label),
            "environment": np.array(self.spec.environment),
            "camera_angle": np.float32(self.camera.angle),
            "camera_scale": np.float32(self.camera.scale),
            "params": np.array(json.dumps(self.describe())),
        }
