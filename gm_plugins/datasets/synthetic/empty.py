"""Scenes without an infant, to measure how a "no infant found" check behaves.

Kinds (``EMPTY_SCENE_KINDS``):

- ``empty``: the bedding of one of the usual environment families under the usual lighting,
  blur and camera noise, nothing moving;
- ``distractor``: the same with a caregiver's hand and forearm reaching in and out, and
  sometimes a swinging toy, a rolling ball or a second hand;
- ``texture``: a patterned cloth (another family's bedding) over most of the frame, sliding,
  turning and rippling, its edge moving in and out.

Scenes ``e0000``... draw from their own seed group, so adding them never changes the infants.
Motion is drawn on the reference clock, like the infants', so a scene moves alike at any fps.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import cv2
import numpy as np

from .distractors import DISTRACTORS
from .motion import REFERENCE_FPS, reference_length, resample, smooth_noise
from .scenes import DISTRACTOR_KINDS, ENVIRONMENTS, Sensor, make_background, sample_scene

EMPTY_SCENE_KINDS = ("empty", "distractor", "texture")
EMPTY_GROUP = 3  # seed group: 0 dataset infants, 1 preprocessing infants, 2 previews
_STREAMS = ("environment", "scene", "motion")


@dataclass(frozen=True)
class EmptySceneSpec:
    """What makes an empty scene reproducible: id, kind, environment family and seed path."""

    subject_id: str
    kind: str
    environment: str
    seed: int
    index: int

    def streams(self) -> dict[str, np.random.Generator]:
        children = np.random.SeedSequence(self.seed, spawn_key=(EMPTY_GROUP, self.index)).spawn(
            len(_STREAMS)
        )
        return {
            name: np.random.default_rng(child)
            for name, child in zip(_STREAMS, children, strict=True)
        }


def make_empty_specs(count: int, seed: int, prefix: str = "e") -> list[EmptySceneSpec]:
    """Scenes ``<prefix>0000``..., balanced over the kinds in shuffled order, any environment."""
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(EMPTY_GROUP,)))
    kinds = order.permutation(np.resize(np.array(EMPTY_SCENE_KINDS), count))
    specs = []
    for index, kind in enumerate(kinds):
        spec = EmptySceneSpec(f"{prefix}{index:04d}", str(kind), "", seed, index)
        rng = spec.streams()["environment"]
        environment = str(ENVIRONMENTS[rng.integers(len(ENVIRONMENTS))])
        specs.append(dataclasses.replace(spec, environment=environment))
    return specs


class MovingCloth:
    """A patterned cloth covering a large part of the frame: it slides, turns and ripples.

    Args:
        rng: random stream.
        size: frame size (W, H).
        num_frames: T.
        fps: frame rate (the motion is the same in seconds at any rate).
    """

    def __init__(
        self, rng: np.random.Generator, size: tuple[int, int], num_frames: int, fps: float
    ) -> None:
        width, height = size
        unit = min(size)
        self.family = str(ENVIRONMENTS[rng.integers(len(ENVIRONMENTS))])
        side = int(np.ceil(1.6 * np.hypot(width, height)))
        texture = make_background(sample_scene(self.family, rng), (side, side), rng)
        self.texture = texture.astype(np.float32)
        steps = reference_length(num_frames, fps)

        def slow(cutoff_hz: float, scale: float) -> np.ndarray:
            return resample(
                smooth_noise(rng, steps, REFERENCE_FPS, cutoff_hz) * scale, num_frames, fps
            )

        drift = unit * rng.uniform(0.05, 0.15)
        self.shift = np.stack([slow(0.25, drift), slow(0.25, drift)], -1)
        self.turn = slow(0.2, rng.uniform(0.05, 0.25))
        self.edge_shift = slow(0.2, unit * 0.08)
        self.wave_direction = rng.uniform(0, 2 * np.pi)
        self.wavelength = unit * rng.uniform(0.2, 0.5)
        self.wave_amplitude = unit * rng.uniform(0.01, 0.04)
        self.wave_hz = rng.uniform(0.3, 1.2)
        self.wave_phase = rng.uniform(0, 2 * np.pi)
        self.coverage = rng.uniform(0.6, 1.0)
        edge_angle = rng.uniform(0, 2 * np.pi)
        self.times = np.arange(num_frames) / fps
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        self.dx, self.dy = x - (width - 1) / 2, y - (height - 1) / 2
        # The cloth lies where the distance along its edge's normal is below a level that leaves
        # ``coverage`` of the frame covered (then moved by ``edge_shift``).
        self.depth = self.dx * np.cos(edge_angle) + self.dy * np.sin(edge_angle)
        self.edge_level = float(np.quantile(self.depth, self.coverage))
        self.centre = (side - 1) / 2

    def draw(self, canvas: np.ndarray, t: int) -> None:
        """Paint the cloth of frame ``t`` over ``canvas`` (H, W, 3 or 4) uint8, in place."""
        cos, sin = np.cos(self.turn[t]), np.sin(self.turn[t])
        along = self.dx * np.cos(self.wave_direction) + self.dy * np.sin(self.wave_direction)
        phase = (
            2 * np.pi * (along / self.wavelength - self.wave_hz * self.times[t]) + self.wave_phase
        )
        ripple = self.wave_amplitude * np.sin(phase)
        map_x = cos * self.dx - sin * self.dy + self.centre + self.shift[t, 0]
        map_y = sin * self.dx + cos * self.dy + self.centre + self.shift[t, 1]
        map_x += ripple * np.cos(self.wave_direction)
        map_y += ripple * np.sin(self.wave_direction)
        cloth = cv2.remap(
            self.texture,
            map_x.astype(np.float32),
            map_y.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        shading = (1 + 0.12 * np.cos(phase)).astype(np.float32)[..., None]  # folds catch light
        alpha = np.clip((self.edge_level + self.edge_shift[t] - self.depth) / 2 + 0.5, 0, 1)
        alpha = alpha.astype(np.float32)[..., None]
        rgb = canvas[..., :3].astype(np.float32)
        canvas[..., :3] = (rgb * (1 - alpha) + cloth * shading * alpha).clip(0, 255)


class EmptyScene:
    """Renderer and ground truth of one scene without an infant (as :class:`SyntheticSubject`).

    Args:
        spec: the scene.
        size: frame size (W, H).
        fps: frames per second.
        num_frames: T.
    """

    def __init__(
        self, spec: EmptySceneSpec, size: tuple[int, int], fps: float, num_frames: int
    ) -> None:
        if spec.kind not in EMPTY_SCENE_KINDS:
            raise ValueError(
                f"unknown empty scene kind {spec.kind!r}; use one of {EMPTY_SCENE_KINDS}"
            )
        rng = spec.streams()
        self.spec, self.size, self.fps, self.num_frames = spec, tuple(size), fps, num_frames
        motion = rng["motion"]
        kinds: tuple[str, ...] = ()
        if spec.kind == "distractor":
            extra = motion.choice(DISTRACTOR_KINDS, size=motion.integers(0, 3))
            kinds = ("hand", *(str(kind) for kind in extra))
        scene = sample_scene(spec.environment, rng["scene"])
        self.scene = dataclasses.replace(scene, distractors=kinds)
        background = make_background(self.scene, self.size, rng["scene"])
        self.sensor = Sensor(self.scene, self.size, rng["scene"], num_frames, fps)
        # Where an infant would lie: hands reach towards it, toys hang beside it.
        centre = np.asarray(self.size) * (0.5 + motion.uniform(-0.15, 0.15, 2))
        radius = min(self.size) * motion.uniform(0.05, 0.25)
        self.distractors = [
            DISTRACTORS[kind](motion, num_frames, fps, self.size, centre, radius) for kind in kinds
        ]
        self.cloth = (
            MovingCloth(motion, self.size, num_frames, fps) if spec.kind == "texture" else None
        )
        self._background = np.dstack([background, np.zeros(background.shape[:2], np.uint8)])
        self._canvas = np.empty_like(self._background)

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t``: RGB image (H, W, 3) uint8 and the infant mask (H, W) uint8, all 0."""
        canvas = self._canvas
        np.copyto(canvas, self._background)
        if self.cloth is not None:
            self.cloth.draw(canvas, t)
        for distractor in self.distractors:
            distractor.draw(canvas, t)
        rgb = cv2.cvtColor(canvas, cv2.COLOR_RGBA2RGB)
        self.sensor.expose(rgb, t)
        return rgb, np.zeros(canvas.shape[:2], np.uint8)

    def describe(self) -> dict:
        """JSON-ready description: kind, environment, scene parameters, the cloth's family."""
        return {
            "subject_id": self.spec.subject_id,
            "scene_kind": self.spec.kind,
            "environment": self.spec.environment,
            "fps": self.fps,
            "size": list(self.size),
            "scene": dataclasses.asdict(self.scene),
            "cloth": None if self.cloth is None else self.cloth.family,
        }

    def ground_truth(self, masks: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays for ``gt/<id>.npz``, keys as an infant's: no keypoint is in view, masks empty."""
        return {
            "keypoints": np.zeros((self.num_frames, 17, 3), np.float32),
            "masks": masks,
            "fps": np.float32(self.fps),
            "label": np.array(""),
            "environment": np.array(self.spec.environment),
            "scene_kind": np.array(self.spec.kind),
            "params": np.array(json.dumps(self.describe())),
        }
