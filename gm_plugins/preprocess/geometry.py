"""Geometry of body position adjustment: trunk estimates -> one similarity transform.

Pure numpy, no OpenMMLab imports. Coordinates are pixels (x right, y down). Keypoints follow
COCO-17 order; only the shoulders (5, 6) and hips (11, 12) are used.

The trunk of one pose estimate is described by its body frame:

* centre: mean of the two shoulders and two hips,
* length: distance from the shoulder midpoint (neck) to the hip midpoint (crotch),
* angle: direction of the neck -> crotch vector, ``atan2(dy, dx)`` in radians. An upright
  infant with the head at the top has angle ``pi / 2`` (the vector points down the image).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SHOULDERS = (5, 6)
HIPS = (11, 12)
TRUNK_KEYPOINTS = (*SHOULDERS, *HIPS)
UPRIGHT_ANGLE = np.pi / 2


def shrunk_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) with the long side at most ``max_side``, aspect kept (unchanged when
    ``max_side`` is None or the frame is small enough)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    factor = max_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


@dataclass(frozen=True)
class BodyFrame:
    """Position, size and orientation of the trunk in pixels (angle in radians)."""

    center: tuple[float, float]
    length: float
    angle: float
    num_estimates: int = 0

    def to_dict(self) -> dict:
        """JSON-ready: centre as a list, angle also in degrees."""
        values = asdict(self)
        values["center"] = [float(v) for v in self.center]
        values["angle_degrees"] = float(np.degrees(self.angle))
        return values


def trunk_estimates(
    keypoints: np.ndarray, scores: np.ndarray | None = None, min_score: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Body frame of each pose estimate.

    Args:
        keypoints: (M, K, 2) pixel coordinates, COCO-17 order (K >= 13).
        scores: (M, K) confidences, or None to accept every estimate.
        min_score: an estimate counts only if its 2 shoulders and 2 hips all score above it.

    Returns:
        centers (M, 2), lengths (M,), angles (M,) and valid (M,) bool. An estimate is also
        invalid when its trunk has zero length.
    """
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, np.shape(keypoints)[-2], 2)
    neck = keypoints[:, list(SHOULDERS)].mean(1)
    crotch = keypoints[:, list(HIPS)].mean(1)
    centers = keypoints[:, list(TRUNK_KEYPOINTS)].mean(1)
    vectors = crotch - neck
    lengths = np.linalg.norm(vectors, axis=1)
    angles = np.arctan2(vectors[:, 1], vectors[:, 0])
    valid = np.isfinite(lengths) & (lengths > 1e-6)
    if scores is not None:
        trunk_scores = np.asarray(scores, np.float64).reshape(len(keypoints), -1)
        valid &= (trunk_scores[:, list(TRUNK_KEYPOINTS)] > min_score).all(1)
    return centers, lengths, angles, valid


def interquartile_indices(lengths: np.ndarray) -> np.ndarray:
    """Indices of the middle 50 % of estimates sorted by trunk length (all of them if < 4)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    quarter = len(order) // 4
    return order[quarter : len(order) - quarter]


def aggregate_body_frame(
    centers: np.ndarray, lengths: np.ndarray, angles: np.ndarray
) -> BodyFrame | None:
    """Robust body frame of a video: the paper's inter-quartile mean over trunk length.

    Estimates are sorted by trunk length and the middle 50 % are averaged; angles are averaged
    as unit vectors so that e.g. 179 and -179 degrees give 180, not 0. Returns None when there
    are no estimates.

    Args:
        centers: (M, 2); lengths: (M,); angles: (M,) radians. Pass only valid estimates.
    """
    if len(lengths) == 0:
        return None
    keep = interquartile_indices(lengths)
    center = np.asarray(centers, np.float64)[keep].mean(0)
    directions = np.stack([np.cos(angles[keep]), np.sin(angles[keep])], 1).mean(0)
    angle = float(np.arctan2(directions[1], directions[0]))
    return BodyFrame(
        center=(float(center[0]), float(center[1])),
        length=float(np.mean(np.asarray(lengths)[keep])),
        angle=angle,
        num_estimates=len(lengths),
    )


def alignment_matrix(body: BodyFrame, scale: float, out_size: int) -> np.ndarray:
    """Similarity transform (2, 3) from source pixels to the aligned square image.

    The trunk centre goes to the image centre, the neck -> crotch vector points straight down
    (head up), and a square of side ``scale * body.length`` around the centre fills the
    ``out_size`` x ``out_size`` output.
    """
    if body.length <= 0:
        raise ValueError(f"trunk length must be positive, got {body.length}")
    zoom = out_size / (scale * body.length)
    turn = UPRIGHT_ANGLE - body.angle
    rotation = zoom * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    # Pixel centres run from 0 to out_size - 1, so the middle is (out_size - 1) / 2.
    target = np.full(2, (out_size - 1) / 2.0)
    translation = target - rotation @ np.asarray(body.center, np.float64)
    return np.concatenate([rotation, translation[:, None]], 1).astype(np.float32)


def fallback_body_frame(
    box: np.ndarray | None, image_size: tuple[int, int], scale: float, margin: float = 1.2
) -> BodyFrame:
    """Unrotated body frame centred on ``box`` (x1, y1, x2, y2) or on the whole image.

    The crop side becomes ``margin`` times the box's longer side (the image's longer side when
    there is no box), expressed as a trunk length so :func:`alignment_matrix` applies unchanged.

    Args:
        image_size: (width, height) of the source frames.
    """
    if box is None or not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        width, height = image_size
        box, margin = np.array([0.0, 0.0, width, height]), 1.0
    x1, y1, x2, y2 = (float(v) for v in box)
    side = margin * max(x2 - x1, y2 - y1)
    return BodyFrame(
        center=((x1 + x2) / 2, (y1 + y2) / 2), length=side / scale, angle=UPRIGHT_ANGLE
    )


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (..., 2) points."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]


def rotate90_points(
    points: np.ndarray, quarter_turns: int, image_size: tuple[int, int]
) -> np.ndarray:
    """Where (..., 2) pixel points land in ``np.rot90(image, quarter_turns)``.

    ``np.rot90`` turns the picture counter-clockwise; pixel (x, y) of a W x H image goes to
    (y, W - 1 - x) for one quarter turn. The inverse of ``k`` turns of a W x H image is
    ``4 - k`` turns of the turned image (size H x W for odd ``k``).

    Args:
        image_size: (width, height) of the image before turning.
    """
    points = np.asarray(points, np.float64).copy()
    width, height = image_size
    for _ in range(quarter_turns % 4):
        x, y = points[..., 0].copy(), points[..., 1].copy()
        points[..., 0], points[..., 1] = y, (width - 1) - x
        width, height = height, width
    return points


def rotate90_box(box: np.ndarray, quarter_turns: int, image_size: tuple[int, int]) -> np.ndarray:
    """(x1, y1, x2, y2) box around the turned corners of ``box`` (see :func:`rotate90_points`)."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    corners = rotate90_points(np.array([[x1, y1], [x2, y2]]), quarter_turns, image_size)
    return np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)
