"""The synthetic infant: proportions, forward kinematics and anti-aliased rendering.

Body coordinates are measured in trunk lengths (neck base to crotch = 1), with the trunk centre at
the origin, +y towards the feet and +x towards the infant's left. The infant lies supine and is seen
from above, so with the head up in the image its left side appears on the image's right.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .motion import POSE_DOFS

COCO_KEYPOINTS = (
    "nose",
    "l_eye",
    "r_eye",
    "l_ear",
    "r_ear",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_wrist",
    "r_wrist",
    "l_hip",
    "r_hip",
    "l_knee",
    "r_knee",
    "l_ankle",
    "r_ankle",
)
COCO_SKELETON = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)  # 1-based, as in the COCO person category
VISIBLE, OCCLUDED, OUTSIDE = 2, 1, 0  # COCO visibility flags

# Fixed-point precision for cv2 drawing: sub-pixel positions keep slow motion smooth.
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class BodyShape:
    """Per-subject proportions (trunk lengths) and appearance (RGB colours)."""

    shoulder_width: float
    hip_width: float
    waist_width: float
    neck_length: float
    head_radius: float
    head_aspect: float
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shank: float
    foot: float
    arm_width: float
    forearm_width: float
    thigh_width: float
    shank_width: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int] | None
    clothing: str  # 'diaper' (bare limbs and trunk), 'short' (onesie) or 'long' (sleepsuit)
    cloth: tuple[int, int, int]
    pattern: str  # 'plain', 'stripes' or 'dots'
    pattern_colour: tuple[int, int, int]


def _random_colour(rng: np.random.Generator, sat: tuple, val: tuple) -> tuple[int, int, int]:
    hsv = np.uint8([[[rng.integers(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def sample_body_shape(rng: np.random.Generator) -> BodyShape:
    """Draw one infant's proportions, skin tone and clothing."""
    tone = rng.uniform(0.0, 1.0)  # light to dark skin
    skin = np.array([236, 196, 170]) * (1 - tone) + np.array([110, 72, 50]) * tone
    skin = tuple(int(c) for c in np.clip(skin + rng.normal(0, 6, 3), 0, 255))
    hair = None
    if rng.random() < 0.7:
        hair = tuple(int(c) for c in rng.choice([[40, 28, 20], [90, 60, 35], [170, 130, 80]]))
    pattern = str(rng.choice(["plain", "stripes", "dots"]))
    return BodyShape(
        shoulder_width=rng.uniform(0.62, 0.74),
        hip_width=rng.uniform(0.48, 0.58),
        waist_width=rng.uniform(0.55, 0.66),
        neck_length=rng.uniform(0.08, 0.14),
        head_radius=rng.uniform(0.34, 0.41),
        head_aspect=rng.uniform(1.08, 1.2),
        upper_arm=rng.uniform(0.42, 0.5),
        forearm=rng.uniform(0.38, 0.45),
        hand=rng.uniform(0.15, 0.19),
        thigh=rng.uniform(0.5, 0.6),
        shank=rng.uniform(0.45, 0.55),
        foot=rng.uniform(0.2, 0.25),
        arm_width=rng.uniform(0.17, 0.21),
        forearm_width=rng.uniform(0.14, 0.17),
        thigh_width=rng.uniform(0.24, 0.3),
        shank_width=rng.uniform(0.18, 0.22),
        skin=skin,
        hair=hair,
        clothing=str(rng.choice(["diaper", "short", "long"], p=[0.2, 0.4, 0.4])),
        cloth=_random_colour(rng, (0.15, 0.8), (0.45, 0.95)),
        pattern=pattern,
        pattern_colour=_random_colour(rng, (0.0, 0.7), (0.3, 1.0)),
    )


def _trunk_profile(shape: BodyShape) -> np.ndarray:
    """Trunk outline, (K, 2) in trunk coordinates: down the left side, up the right, across."""
    shoulder, waist, hip = shape.shoulder_width / 2, shape.waist_width / 2, shape.hip_width / 2
    left = [
        (shoulder, -0.52),
        (shoulder * 0.92, -0.25),
        (waist, 0.05),
        (hip, 0.4),
        (hip * 0.7, 0.58),
    ]
    right = [(-x, y) for x, y in reversed(left)]
    top = [(-shoulder * 0.6, -0.58), (shoulder * 0.6, -0.58)]
    return np.array(left + right + top)


def _pattern_points(shape: BodyShape) -> np.ndarray:
    """Clothing pattern anchors on the trunk, (M, 2): stripe end pairs or dot centres."""
    if shape.pattern == "stripes":
        rows = np.linspace(-0.35, 0.3, 5)
        inset = (
            0.82
            * np.interp(
                rows, [-0.5, 0.05, 0.4], [shape.shoulder_width, shape.waist_width, shape.hip_width]
            )
            / 2
        )
        return np.stack([np.stack([-inset, rows], 1), np.stack([inset, rows], 1)], 1).reshape(-1, 2)
    if shape.pattern == "dots":
        grid = np.array([(x, y) for y in (-0.3, -0.05, 0.2) for x in (-0.15, 0.15)])
        return grid + np.array([[0.0, 0.0], [0.0, 0.1]] * 3)
    return np.zeros((0, 2))


def _rotate(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate a point (2,) or points (K, 2) / (T, K, 2) by per-frame angles (T,).

    Returns (T, 2) for a single point, else (T, K, 2).
    """
    cos, sin = np.cos(angle), np.sin(angle)
    if points.ndim > 1:
        cos, sin = cos[:, None], sin[:, None]
    x, y = points[..., 0], points[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], -1)


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], -1)


def forward_kinematics(shape: BodyShape, pose: np.ndarray) -> dict[str, np.ndarray]:
    """Joint positions from joint angles.

    Args:
        shape: the infant's proportions.
        pose: (T, len(POSE_DOFS)) joint angles in radians (trunk shifts in trunk lengths).

    Returns:
        Points as (T, 2) arrays (trunk outline (T, K, 2), pattern (T, M, 2)) in body coordinates,
        plus per-frame angles ``head_angle`` and ``yaw`` as (T,) arrays.
    """
    dof = {name: pose[:, i] for i, name in enumerate(POSE_DOFS)}
    centre = np.stack([dof["trunk_dx"], dof["trunk_dy"]], -1)
    upper = dof["trunk_rot"] + dof["trunk_bend"] / 2
    lower = dof["trunk_rot"] - dof["trunk_bend"] / 2
    out: dict[str, np.ndarray] = {}
    for name, local in (
        ("trunk_outline", _trunk_profile(shape)),
        ("pattern", _pattern_points(shape)),
    ):
        # The upper half of the trunk follows the shoulders, the lower half the pelvis.
        angle = np.where(local[None, :, 1] < 0, upper[:, None], lower[:, None])
        out[name] = centre[:, None] + _rotate_each(local, angle)
    neck = centre + _rotate(np.array([0.0, -0.5]), upper)
    crotch = centre + _rotate(np.array([0.0, 0.5]), lower)
    out.update(neck=neck, crotch=crotch)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        shoulder = neck + _rotate(np.array([sign * shape.shoulder_width / 2 * 0.8, 0.03]), upper)
        hip = crotch + _rotate(np.array([sign * shape.hip_width / 2 * 0.7, -0.08]), lower)
        out.update(_limb_chain(shape, dof, side, sign, shoulder, hip, upper, lower))
        out[f"{side}_shoulder"], out[f"{side}_hip"] = shoulder, hip
    out.update(_head(shape, dof, neck, upper))
    return out


def _rotate_each(local: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate each of K local points (K, 2) by its own per-frame angle (T, K)."""
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack(
        [cos * local[:, 0] - sin * local[:, 1], sin * local[:, 0] + cos * local[:, 1]], -1
    )


def _direction(angle: np.ndarray, sign: float, frame_angle: np.ndarray) -> np.ndarray:
    """Unit vectors of a limb angle mirrored to one side and turned with the trunk, (T, 2)."""
    vec = _unit(angle) * np.array([sign, 1.0])
    return _rotate(vec[:, None], frame_angle)[:, 0]


def _limb_chain(shape, dof, side, sign, shoulder, hip, upper, lower) -> dict[str, np.ndarray]:
    # Lifting a segment towards the camera shortens its projection by cos(elevation).
    arm = dof[f"{side}_shoulder"]
    forearm = arm - dof[f"{side}_elbow"]
    elbow = (
        shoulder
        + _direction(arm, sign, upper)
        * (shape.upper_arm * np.cos(dof[f"{side}_shoulder_elev"]))[:, None]
    )
    forearm_len = np.cos(dof[f"{side}_forearm_elev"])[:, None]
    wrist = elbow + _direction(forearm, sign, upper) * shape.forearm * forearm_len
    hand = (
        wrist + _direction(forearm + dof[f"{side}_wrist"], sign, upper) * shape.hand * forearm_len
    )
    thigh = dof[f"{side}_hip"]
    shank = thigh + dof[f"{side}_knee"]
    knee = (
        hip
        + _direction(thigh, sign, lower) * (shape.thigh * np.cos(dof[f"{side}_hip_elev"]))[:, None]
    )
    ankle = (
        knee
        + _direction(shank, sign, lower) * (shape.shank * np.cos(dof[f"{side}_knee_elev"]))[:, None]
    )
    # Supine feet point their toes at the camera, so the foot looks short from above.
    toe = ankle + _direction(shank + dof[f"{side}_ankle"], sign, lower) * shape.foot * 0.7
    return {
        f"{side}_elbow": elbow,
        f"{side}_wrist": wrist,
        f"{side}_hand": hand,
        f"{side}_knee": knee,
        f"{side}_ankle": ankle,
        f"{side}_toe": toe,
    }


def _head(
    shape: BodyShape, dof: dict, neck: np.ndarray, upper: np.ndarray
) -> dict[str, np.ndarray]:
    head_angle = upper + dof["neck"]
    crown = _rotate(np.array([0.0, -1.0]), head_angle)  # unit vector towards the crown
    lateral = _rotate(np.array([1.0, 0.0]), head_angle)  # unit vector towards the infant's left
    r = shape.head_radius
    centre = neck + crown * (shape.neck_length + r * shape.head_aspect * 0.85)
    yaw = dof["head_yaw"]
    turn = (np.sin(yaw) * r)[:, None]
    spread = (np.cos(yaw) * r)[:, None]

    def face_point(across: float, along: float, shift: float) -> np.ndarray:
        return centre + lateral * (across * spread + shift * turn) + crown * along * r

    return {
        "head": centre,
        "head_angle": head_angle,
        "yaw": yaw,
        "nose": face_point(0.0, -0.12, 0.55),
        "l_eye": face_point(0.36, 0.18, 0.55),
        "r_eye": face_point(-0.36, 0.18, 0.55),
        "l_ear": face_point(0.86, 0.05, 0.2),
        "r_ear": face_point(-0.86, 0.05, 0.2),
        "mouth": face_point(0.0, -0.45, 0.5),
    }


@dataclass(frozen=True)
class Camera:
    """Similarity from body coordinates to pixels: scale (px per trunk length), angle, offset."""

    scale: float
    angle: float
    offset: tuple[float, float]

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) body coordinates to (..., 2) pixel coordinates."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        matrix = self.scale * np.array([[cos, -sin], [sin, cos]])
        return points @ matrix.T + np.asarray(self.offset)


def to_pixels(joints: dict[str, np.ndarray], camera: Camera) -> dict[str, np.ndarray]:
    """Map every point array of ``forward_kinematics`` to pixels; angles turn with the camera."""
    out = {}
    for name, value in joints.items():
        if name == "head_angle":
            out[name] = value + camera.angle
        elif name == "yaw":
            out[name] = value
        else:
            out[name] = camera.apply(value)
    return out


def coco_keypoints(
    pixels: dict[str, np.ndarray], shape: BodyShape, camera: Camera, size: tuple[int, int]
) -> np.ndarray:
    """COCO-17 keypoints (T, 17, 3): pixel x, y and visibility (2 seen, 1 hidden, 0 outside).

    ``size`` is (width, height). A face point is hidden when a hand or forearm lies over it and an
    ear when the head turns away from it.
    """
    xy = np.stack([pixels[name] for name in COCO_KEYPOINTS], 1)
    vis = np.full(xy.shape[:2], VISIBLE, np.float32)
    yaw = pixels["yaw"]
    vis[:, 3][yaw < -0.6] = OCCLUDED  # turning right hides the left ear
    vis[:, 4][yaw > 0.6] = OCCLUDED
    for side in ("l", "r"):
        for start, end, width in (
            ("elbow", "wrist", shape.forearm_width),
            ("wrist", "hand", shape.forearm_width * 1.3),
        ):
            a, b = pixels[f"{side}_{start}"], pixels[f"{side}_{end}"]
            hidden = _near_segment(xy[:, :5], a, b, width * camera.scale / 2)
            vis[:, :5][hidden] = np.minimum(vis[:, :5][hidden], OCCLUDED)
    inside = (
        (xy[..., 0] >= 0)
        & (xy[..., 0] <= size[0] - 1)
        & (xy[..., 1] >= 0)
        & (xy[..., 1] <= size[1] - 1)
    )
    vis[~inside] = OUTSIDE
    return np.concatenate([xy, vis[..., None]], -1).astype(np.float32)


def _near_segment(points: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """Whether points (T, K, 2) lie within radius of segments a-b ((T, 2) each), giving (T, K)."""
    ab = (b - a)[:, None]
    ap = points - a[:, None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1) < radius


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int, int]:
    """RGBA drawing colour; alpha 255 marks infant pixels in the canvas's fourth channel."""
    return (*(int(min(255, c * factor)) for c in colour), 255)


class BodyPainter:
    """Draws the infant of one subject frame by frame onto an RGBA canvas.

    The canvas's alpha channel doubles as the body mask: every primitive is drawn with alpha 255,
    so anti-aliased edges get the same partial coverage in colour and in alpha.

    Args:
        shape: the infant's proportions and colours.
        pixels: ``to_pixels`` output, points (T, 2) in pixels.
        scale: pixels per trunk length.
    """

    def __init__(self, shape: BodyShape, pixels: dict[str, np.ndarray], scale: float) -> None:
        self.shape = shape
        self.points = {
            k: np.round(v * _ONE).astype(np.int32) for k, v in pixels.items() if v.ndim > 1
        }
        self.head_angle = np.degrees(pixels["head_angle"])
        trunk_axis = pixels["crotch"] - pixels["neck"]
        self.pelvis_angle = np.degrees(np.arctan2(trunk_axis[:, 1], trunk_axis[:, 0])) - 90
        self.scale = scale
        skin, cloth = shape.skin, shape.cloth
        covered = {
            "diaper": (),
            "short": ("upper_arm",),
            "long": ("upper_arm", "forearm", "thigh", "shank"),
        }
        self.colours = {
            part: _shade(cloth, 0.88) if part in covered[shape.clothing] else _shade(skin, 0.97)
            for part in ("upper_arm", "forearm", "thigh", "shank")
        }
        self.colours.update(
            skin=_shade(skin, 1.0),
            ear=_shade(skin, 0.85),
            trunk=_shade(skin if shape.clothing == "diaper" else cloth, 1.0),
            hair=_shade(shape.hair or skin, 1.0),
            eye=_shade((35, 25, 25), 1.0),
            mouth=_shade((190, 90, 90), 1.0),
            pattern=_shade(shape.pattern_colour, 1.0),
            diaper=_shade((245, 245, 240), 1.0),
        )

    def _px(self, length: float) -> int:
        return max(1, round(length * self.scale))

    def _segment(self, canvas, t, start, end, width, colour) -> None:
        p, q = self.points[start][t], self.points[end][t]
        cv2.line(canvas, (p[0], p[1]), (q[0], q[1]), colour, self._px(width), cv2.LINE_AA, _SHIFT)

    def _disc(self, canvas, t, name, radius, colour) -> None:
        p = self.points[name][t]
        cv2.circle(
            canvas,
            (p[0], p[1]),
            max(_ONE // 2, round(radius * self.scale * _ONE)),
            colour,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )

    def draw(self, canvas: np.ndarray, t: int) -> None:
        """Draw frame ``t`` of the infant onto ``canvas`` (H, W, 4) uint8 in place."""
        self._draw_legs(canvas, t)
        self._draw_trunk(canvas, t)
        self._draw_head(canvas, t)
        self._draw_arms(canvas, t)

    def _draw_legs(self, canvas, t) -> None:
        s, c = self.shape, self.colours
        for side in ("l", "r"):
            self._segment(canvas, t, f"{side}_hip", f"{side}_knee", s.thigh_width, c["thigh"])
            self._segment(canvas, t, f"{side}_knee", f"{side}_ankle", s.shank_width, c["shank"])
            self._segment(
                canvas, t, f"{side}_ankle", f"{side}_toe", s.shank_width * 0.95, c["skin"]
            )

    def _draw_arms(self, canvas, t) -> None:
        s, c = self.shape, self.colours
        for side in ("l", "r"):
            self._segment(
                canvas, t, f"{side}_shoulder", f"{side}_elbow", s.arm_width, c["upper_arm"]
            )
            self._segment(
                canvas, t, f"{side}_elbow", f"{side}_wrist", s.forearm_width, c["forearm"]
            )
            self._segment(
                canvas, t, f"{side}_wrist", f"{side}_hand", s.forearm_width * 1.2, c["skin"]
            )

    def _draw_trunk(self, canvas, t) -> None:
        s, c = self.shape, self.colours
        cv2.fillPoly(canvas, [self.points["trunk_outline"][t]], c["trunk"], cv2.LINE_AA, _SHIFT)
        if s.clothing == "diaper":
            centre = self.points["crotch"][t]
            axes = (self._px(s.hip_width * 0.62) * _ONE, self._px(0.22) * _ONE)
            cv2.ellipse(
                canvas,
                (centre[0], centre[1]),
                axes,
                self.pelvis_angle[t],
                180,
                360,
                c["diaper"],
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
            return
        pattern = self.points["pattern"][t]
        if s.pattern == "stripes":
            for p, q in zip(pattern[0::2], pattern[1::2], strict=True):
                cv2.line(
                    canvas,
                    (p[0], p[1]),
                    (q[0], q[1]),
                    c["pattern"],
                    self._px(0.05),
                    cv2.LINE_AA,
                    _SHIFT,
                )
        elif s.pattern == "dots":
            for p in pattern:
                cv2.circle(
                    canvas,
                    (p[0], p[1]),
                    max(_ONE // 2, round(0.05 * self.scale * _ONE)),
                    c["pattern"],
                    -1,
                    cv2.LINE_AA,
                    _SHIFT,
                )

    def _draw_head(self, canvas, t) -> None:
        s, c = self.shape, self.colours
        self._segment(canvas, t, "neck", "head", 0.28, c["skin"])
        for ear in ("l_ear", "r_ear"):
            self._disc(canvas, t, ear, s.head_radius * 0.2, c["ear"])
        centre, angle = self.points["head"][t], self.head_angle[t]
        radius = s.head_radius * self.scale * _ONE
        crown = np.array([np.sin(np.radians(angle)), -np.cos(np.radians(angle))])
        for colour, shrink, shift in ((c["hair"], 1.0, 0.0), (c["skin"], 0.93, -0.12)):
            middle = centre + crown * shift * radius
            axes = (round(radius * shrink), round(radius * s.head_aspect * shrink))
            cv2.ellipse(
                canvas,
                (round(middle[0]), round(middle[1])),
                axes,
                angle,
                0,
                360,
                colour,
                -1,
                cv2.LINE_AA,
                _SHIFT,
            )
        for eye in ("l_eye", "r_eye"):
            self._disc(canvas, t, eye, s.head_radius * 0.08, c["eye"])
        self._disc(canvas, t, "mouth", s.head_radius * 0.07, c["mouth"])
