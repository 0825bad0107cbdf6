"""Recording environments: backgrounds, lighting, sensor noise and distracting motion.

Every environment family has its own bedding (texture and palette). Distractors move independently
of the infant's class; they are drawn with alpha 0 so the body mask excludes what they cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .motion import GM_CLASSES, REFERENCE_FPS, reference_length

ENVIRONMENTS = ("blanket", "mattress", "quilt", "sheet", "towel", "clutter")
# With --confound P, a subject's environment comes from its class's pair with probability P.
CONFOUND_FAMILIES = {
    "WMs": ("blanket", "sheet"),
    "FMs": ("mattress", "towel"),
    "PR": ("quilt", "clutter"),
}
DISTRACTOR_KINDS = ("ball", "hand", "toy")


def choose_environment(label: str, confound: float, rng: np.random.Generator) -> str:
    """Environment family of a subject: tied to its class with probability ``confound``."""
    if label not in GM_CLASSES:
        raise ValueError(f"unknown GM class {label!r}; expected one of {GM_CLASSES}")
    tied = rng.random() < confound  # always drawn, so P does not shift the other draws
    families = CONFOUND_FAMILIES[label] if tied else ENVIRONMENTS
    return str(families[rng.integers(len(families))])


@dataclass(frozen=True)
class SceneParams:
    """How one recording looks: lighting gain, colour cast (RGB gains), gamma, noise, blur."""

    environment: str
    brightness: float
    cast: tuple[float, float, float]
    gamma: float
    noise_sigma: float
    blur_sigma: float
    vignette: float
    distractors: tuple[str, ...] = field(default=())


def sample_scene(environment: str, rng: np.random.Generator) -> SceneParams:
    """Draw lighting, noise and distractors for an environment family."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    warmth = rng.uniform(-1, 1)
    cast = np.array([1 + 0.12 * warmth, 1.0, 1 - 0.12 * warmth]) * rng.uniform(0.96, 1.04, 3)
    count = 1 + int(rng.random() < 0.5) if environment == "clutter" else int(rng.random() < 0.35)
    return SceneParams(
        environment=environment,
        brightness=float(rng.uniform(0.6, 1.2)),
        cast=tuple(float(c) for c in cast),
        gamma=float(rng.uniform(0.8, 1.2)),
        noise_sigma=float(rng.uniform(1.0, 7.0)),
        blur_sigma=float(rng.uniform(0.3, 0.9)) if rng.random() < 0.4 else 0.0,
        vignette=float(rng.uniform(0.0, 0.35)),
        distractors=tuple(str(k) for k in rng.choice(DISTRACTOR_KINDS, size=count)),
    )


def _hsv_colour(rng: np.random.Generator, hue, sat, val) -> np.ndarray:
    """RGB float colour from HSV ranges (hue in degrees, sat and val in [0, 1])."""
    hsv = np.uint8(
        [[[rng.uniform(*hue) / 2 % 180, rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]]
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _low_frequency(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field in about [-1, 1], (H, W) float32: folds, uneven light."""
    width, height = size
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(-2, 2) / 2


def _grid(size: tuple[int, int], angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by ``angle``, two (H, W) float32 arrays."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def _blanket(rng, size) -> np.ndarray:
    image = np.empty((size[1], size[0], 3), np.float32)
    image[:] = _hsv_colour(rng, (0, 360), (0.15, 0.4), (0.75, 0.95))
    motifs = [_hsv_colour(rng, (0, 360), (0.4, 0.9), (0.5, 1.0)) for _ in range(3)]
    unit = min(size) / 12
    for _ in range(int(size[0] * size[1] / unit**2 * 0.5)):
        centre = (int(rng.uniform(0, size[0])), int(rng.uniform(0, size[1])))
        radius = max(1, int(unit * rng.uniform(0.25, 0.6)))
        colour = motifs[rng.integers(3)].tolist()
        if rng.random() < 0.5:
            cv2.circle(image, centre, radius, colour, -1, cv2.LINE_AA)
        else:
            cv2.drawMarker(
                image, centre, colour, cv2.MARKER_STAR, 2 * radius, max(1, radius // 2), cv2.LINE_AA
            )
    return image * (1 + 0.12 * _low_frequency(rng, size, 4)[..., None])


def _mattress(rng, size) -> np.ndarray:
    u, _ = _grid(size, rng.uniform(0, np.pi))
    period = min(size) * rng.uniform(0.06, 0.16)
    stripes = ((u / period) % 1 < rng.uniform(0.3, 0.6)).astype(np.float32)[..., None]
    light = _hsv_colour(rng, (0, 360), (0.0, 0.1), (0.85, 1.0))
    dark = _hsv_colour(rng, (190, 240), (0.3, 0.6), (0.45, 0.8))
    image = light * (1 - stripes) + dark * stripes
    return image * (1 + 0.1 * _low_frequency(rng, size, 3)[..., None])


def _quilt(rng, size) -> np.ndarray:
    u, v = _grid(size, rng.uniform(0, np.pi / 2))
    cell = min(size) * rng.uniform(0.12, 0.25)
    palette = np.stack([_hsv_colour(rng, (0, 360), (0.3, 0.8), (0.45, 0.95)) for _ in range(5)])
    i, j = np.floor(u / cell).astype(np.int64), np.floor(v / cell).astype(np.int64)
    image = palette[(i * 7 + j * 3 + (i * j) % 2) % len(palette)]
    seam = (np.minimum((u / cell) % 1, (v / cell) % 1) < 0.06)[..., None]
    return np.where(seam, image * 0.6, image) * (1 + 0.08 * _low_frequency(rng, size, 5)[..., None])


def _sheet(rng, size) -> np.ndarray:
    image = np.empty((size[1], size[0], 3), np.float32)
    image[:] = _hsv_colour(rng, (0, 360), (0.0, 0.12), (0.85, 1.0))
    folds = _low_frequency(rng, size, 7) + 0.5 * _low_frequency(rng, size, 12)
    return image * (1 + 0.18 * folds[..., None])


def _towel(rng, size) -> np.ndarray:
    image = np.empty((size[1], size[0], 3), np.float32)
    image[:] = _hsv_colour(rng, (0, 360), (0.4, 0.8), (0.5, 0.85))
    terry = cv2.GaussianBlur(
        rng.standard_normal((size[1], size[0])).astype(np.float32), (0, 0), 0.8
    )
    return image * (1 + 0.35 * terry[..., None] / terry.std() * 0.5)


def _clutter(rng, size) -> np.ndarray:
    image = np.empty((size[1], size[0], 3), np.float32)
    image[:] = _hsv_colour(rng, (15, 40), (0.3, 0.6), (0.35, 0.65))
    planks, _ = _grid(size, rng.choice([0.0, np.pi / 2]))
    image *= (1 + 0.08 * np.sin(planks / (min(size) * 0.1) * np.pi))[..., None]
    unit = min(size) / 10
    for _ in range(rng.integers(5, 10)):
        colour = _hsv_colour(rng, (0, 360), (0.3, 1.0), (0.3, 1.0)).tolist()
        centre = np.array([rng.uniform(0, size[0]), rng.uniform(0, size[1])])
        extent = unit * rng.uniform(0.6, 1.8, 2)
        if rng.random() < 0.5:
            box = cv2.boxPoints(((*centre,), (*extent,), rng.uniform(0, 180))).astype(np.int32)
            cv2.fillPoly(image, [box], colour, cv2.LINE_AA)
        else:
            cv2.ellipse(
                image,
                (*centre.astype(int),),
                (*(extent / 2).astype(int),),
                rng.uniform(0, 180),
                0,
                360,
                colour,
                -1,
                cv2.LINE_AA,
            )
    return image


_BACKGROUNDS = {
    "blanket": _blanket,
    "mattress": _mattress,
    "quilt": _quilt,
    "sheet": _sheet,
    "towel": _towel,
    "clutter": _clutter,
}


def make_background(
    scene: SceneParams, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Static bedding of the scene's family with vignetting, (H, W, 3) uint8 RGB; size is (W, H)."""
    image = _BACKGROUNDS[scene.environment](rng, size)
    x, y = _grid(size, 0.0)
    radius = np.hypot(x - size[0] / 2, y - size[1] / 2) / np.hypot(*size) * 2
    image = image * (1 - scene.vignette * radius**2)[..., None]
    return image.clip(0, 255).astype(np.uint8)


class Sensor:
    """Per-frame sensor model: lighting (gain, colour cast, gamma) as one LUT, blur, noise bank.

    Args:
        scene: lighting and noise parameters.
        size: (W, H).
        rng: the subject's scene random stream (draws the noise bank and the frame-to-noise order).
        num_frames: T.
        fps: frame rate; the draws from ``rng`` depend only on the clip's length in seconds, so
            what the scene draws next (its distractors) is the same at any frame rate.
    """

    def __init__(
        self,
        scene: SceneParams,
        size: tuple[int, int],
        rng: np.random.Generator,
        num_frames: int,
        fps: float = REFERENCE_FPS,
    ) -> None:
        levels = np.arange(256, dtype=np.float32)[:, None] / 255
        gains = scene.brightness * np.asarray(scene.cast, np.float32)[None]
        self.lut = (255 * (levels**scene.gamma) * gains).clip(0, 255).astype(np.uint8)[:, None, :]
        self.blur_sigma = scene.blur_sigma
        # A bank of noise images reused in random order costs far less than fresh noise per frame.
        noise = rng.normal(0, scene.noise_sigma, (8, size[1], size[0], 3)).round()
        self.noise_up = noise.clip(0, 255).astype(np.uint8)
        self.noise_down = (-noise).clip(0, 255).astype(np.uint8)
        self.order = rng.integers(0, len(noise), reference_length(num_frames, fps))
        if len(self.order) != num_frames or fps != REFERENCE_FPS:
            # Noise is per frame, not motion: other rates draw it from a stream of their own.
            self.order = np.random.default_rng(self.order).integers(0, len(noise), num_frames)

    def expose(self, rgb: np.ndarray, t: int) -> None:
        """Turn the clean rendering of frame ``t`` (H, W, 3) uint8 into a camera frame, in place."""
        cv2.LUT(rgb, self.lut, dst=rgb)
        if self.blur_sigma:
            cv2.GaussianBlur(rgb, (0, 0), self.blur_sigma, dst=rgb)
        k = self.order[t]
        cv2.add(rgb, self.noise_up[k], dst=rgb)
        cv2.subtract(rgb, self.noise_down[k], dst=rgb)
