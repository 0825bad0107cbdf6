"""Distracting motion in the background, unrelated to the infant's class.

Each distractor knows its position in every frame up front, so it can say which keypoints it hides
(``covers``) before any frame is drawn. Drawing uses alpha 0: the body mask keeps only what is seen.
Paths are functions of time in seconds, so a distractor moves alike at any frame rate.
"""

from __future__ import annotations

import cv2
import numpy as np

from .motion import REFERENCE_FPS, reference_length, resample, smooth_noise

_SHIFT = 4
_ONE = 1 << _SHIFT


def _fixed(point: np.ndarray) -> tuple[int, int]:
    return round(point[0] * _ONE), round(point[1] * _ONE)


def _colour(rgb) -> tuple[int, int, int, int]:
    return (*(int(c) for c in rgb), 0)


def _point_beside(centre, radius, size, rng) -> np.ndarray:
    """A point in the frame outside the infant's circle if there is room, (2,)."""
    for _ in range(50):
        point = rng.uniform([0, 0], size)
        if np.hypot(*(point - centre)) > radius:
            return point
    return np.array([size[0] * 0.1, size[1] * 0.1])


class Ball:
    """A ball rolling to and fro on an elliptical path beside the infant."""

    def __init__(self, rng, num_frames, fps, size, body_centre, body_radius) -> None:
        unit = min(size)
        self.radius = unit * rng.uniform(0.05, 0.08)
        anchor = _point_beside(body_centre, body_radius + self.radius, size, rng)
        steps = reference_length(num_frames, fps)  # drawn in seconds, whatever the frame rate
        t = np.arange(steps) / REFERENCE_FPS
        phase = 2 * np.pi * rng.uniform(0.1, 0.4) * t + 0.6 * smooth_noise(
            rng, steps, REFERENCE_FPS, 0.1
        )
        phase = resample(phase, num_frames, fps)
        reach = unit * rng.uniform(0.05, 0.15, 2)
        self.path = anchor + np.stack([np.cos(phase), np.sin(phase)], -1) * reach
        self.rgb = rng.integers(40, 255, 3)

    def draw(self, canvas: np.ndarray, t: int) -> None:
        centre = _fixed(self.path[t])
        cv2.circle(
            canvas, centre, round(self.radius * _ONE), _colour(self.rgb), -1, cv2.LINE_AA, _SHIFT
        )
        highlight = _fixed(self.path[t] - self.radius * 0.35)
        cv2.circle(
            canvas,
            highlight,
            round(self.radius * 0.3 * _ONE),
            _colour(np.minimum(self.rgb + 80, 255)),
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )

    def covers(self, points: np.ndarray) -> np.ndarray:
        """Whether points (T, K, 2) are hidden, (T, K) bool."""
        return np.linalg.norm(points - self.path[:, None], axis=-1) < self.radius + 1


class Hand:
    """A caregiver's forearm and hand reaching in from the frame edge towards the infant."""

    def __init__(self, rng, num_frames, fps, size, body_centre, body_radius) -> None:
        unit = min(size)
        self.width, self.palm = unit * rng.uniform(0.09, 0.13), unit * rng.uniform(0.06, 0.08)
        edge_angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(edge_angle), np.sin(edge_angle)])
        self.base = body_centre + direction * np.hypot(*size)
        # The reach stops at the infant's outline, so it rarely hides the body.
        self.target = body_centre + direction * (body_radius + self.palm)
        reach = np.zeros(num_frames)
        start = rng.uniform(0, 0.5) * num_frames
        while start < num_frames:
            duration = rng.uniform(1.5, 3.0) * fps
            t = np.arange(num_frames)
            inside = (t >= start) & (t < start + duration)
            reach[inside] = np.sin(np.pi * (t[inside] - start) / duration) ** 2
            start += duration + rng.uniform(2.0, 6.0) * fps
        self.tip = self.base + (self.target - self.base) * reach[:, None]
        self.active = reach > 0.02
        skin = rng.uniform(0, 1)
        self.rgb = np.array([225, 185, 160]) * (1 - skin) + np.array([105, 70, 50]) * skin

    def draw(self, canvas: np.ndarray, t: int) -> None:
        if not self.active[t]:
            return
        tip = self.tip[t]
        cv2.line(
            canvas,
            _fixed(self.base),
            _fixed(tip),
            _colour(self.rgb * 0.9),
            max(1, round(self.width)),
            cv2.LINE_AA,
            _SHIFT,
        )
        cv2.circle(
            canvas, _fixed(tip), round(self.palm * _ONE), _colour(self.rgb), -1, cv2.LINE_AA, _SHIFT
        )

    def covers(self, points: np.ndarray) -> np.ndarray:
        """Whether points (T, K, 2) are hidden, (T, K) bool."""
        ab = (self.tip - self.base)[:, None]
        ap = points - self.base
        t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
        near_arm = np.linalg.norm(ap - t[..., None] * ab, axis=-1) < self.width / 2 + 1
        near_palm = np.linalg.norm(points - self.tip[:, None], axis=-1) < self.palm + 1
        return (near_arm | near_palm) & self.active[:, None]


class Toy:
    """A toy hanging from a mobile above the infant, swinging like a pendulum seen from above."""

    def __init__(self, rng, num_frames, fps, size, body_centre, body_radius) -> None:
        unit = min(size)
        self.radius = unit * rng.uniform(0.04, 0.06)
        pivot = _point_beside(body_centre, body_radius * 0.9, size, rng)
        axis_angle = rng.uniform(0, 2 * np.pi)
        t = np.arange(num_frames) / fps
        swing = np.sin(2 * np.pi * t / rng.uniform(1.2, 2.5) + rng.uniform(0, 2 * np.pi))
        decay = 0.6 + 0.4 * np.cos(2 * np.pi * t / rng.uniform(8, 20))
        offset = unit * rng.uniform(0.05, 0.12) * swing * decay
        self.path = pivot + offset[:, None] * np.array([np.cos(axis_angle), np.sin(axis_angle)])
        self.rgb = rng.integers(60, 255, 3)

    def draw(self, canvas: np.ndarray, t: int) -> None:
        centre = _fixed(self.path[t])
        cv2.circle(
            canvas, centre, round(self.radius * _ONE), _colour(self.rgb), -1, cv2.LINE_AA, _SHIFT
        )
        cv2.circle(
            canvas,
            centre,
            round(self.radius * 0.5 * _ONE),
            _colour(255 - self.rgb),
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )

    def covers(self, points: np.ndarray) -> np.ndarray:
        """Whether points (T, K, 2) are hidden, (T, K) bool."""
        return np.linalg.norm(points - self.path[:, None], axis=-1) < self.radius + 1


DISTRACTORS = {"ball": Ball, "hand": Hand, "toy": Toy}
