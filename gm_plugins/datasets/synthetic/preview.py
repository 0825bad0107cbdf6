"""Contact sheet: one row per GM class, columns across environment families."""

from __future__ import annotations

import cv2
import numpy as np

from .body import COCO_SKELETON, OUTSIDE
from .motion import GM_CLASSES
from .scenes import ENVIRONMENTS
from .subject import SubjectSpec, SyntheticSubject

PREVIEW_GROUP = 2
_LABEL_WIDTH, _HEADER_HEIGHT = 44, 16


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Copy of an RGB image (H, W, 3) with the COCO skeleton of keypoints (17, 3) drawn on it."""
    out = image.copy()
    for a, b in COCO_SKELETON:
        p, q = keypoints[a - 1], keypoints[b - 1]
        if p[2] != OUTSIDE and q[2] != OUTSIDE:
            cv2.line(
                out,
                (round(p[0]), round(p[1])),
                (round(q[0]), round(q[1])),
                (255, 255, 0),
                1,
                cv2.LINE_AA,
            )
    for x, y, visibility in keypoints:
        if visibility != OUTSIDE:
            colour = (255, 0, 0) if visibility == 2 else (0, 0, 255)
            cv2.circle(out, (round(x), round(y)), 1, colour, -1, cv2.LINE_AA)
    return out


def contact_sheet(
    size: tuple[int, int] = (160, 120),
    seed: int = 0,
    fps: int = 30,
    frames_per_environment: int = 2,
    seconds: float = 4.0,
    with_keypoints: bool = True,
) -> np.ndarray:
    """RGB contact sheet (H, W, 3) uint8: rows WMs/FMs/PR, columns environments x frames.

    One subject per (class, environment) from its own seed group, so previews never reuse dataset
    subjects. With keypoints, every other frame shows the ground-truth skeleton.
    """
    num_frames = max(2, round(seconds * fps))
    times = np.linspace(0, num_frames - 1, frames_per_environment + 2)[1:-1].round().astype(int)
    rows = []
    for row, label in enumerate(GM_CLASSES):
        tiles = []
        for column, environment in enumerate(ENVIRONMENTS):
            index = row * len(ENVIRONMENTS) + column
            spec = SubjectSpec(f"v{index:04d}", label, environment, seed, PREVIEW_GROUP, index)
            subject = SyntheticSubject(spec, size, fps, num_frames)
            for k, t in enumerate(times):
                image = subject.render(int(t))[0]
                tiles.append(
                    draw_keypoints(image, subject.keypoints[t])
                    if with_keypoints and k % 2
                    else image
                )
        rows.append(_with_label(np.hstack(tiles), label))
    return np.vstack([_header(size, frames_per_environment, rows[0].shape[1]), *rows])


def _with_label(strip: np.ndarray, text: str) -> np.ndarray:
    margin = np.full((strip.shape[0], _LABEL_WIDTH, 3), 255, np.uint8)
    cv2.putText(
        margin,
        text,
        (4, strip.shape[0] // 2 + 5),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.hstack([margin, strip])


def _header(size: tuple[int, int], frames_per_environment: int, width: int) -> np.ndarray:
    header = np.full((_HEADER_HEIGHT, width, 3), 255, np.uint8)
    for column, environment in enumerate(ENVIRONMENTS):
        x = _LABEL_WIDTH + column * size[0] * frames_per_environment + 4
        cv2.putText(
            header, environment, (x, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
    return header
