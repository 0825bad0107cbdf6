"""Class-specific joint-angle trajectories for the three General Movement classes.

Each limb (and the head and trunk) is driven by a complex signal z(t); a joint's angle is
Re(z(t) * exp(i * phase)) times the joint's range. A limb's in-plane angle and its elevation towards
the camera are phased a quarter turn apart, so a rotating z (WMs, FMs) traces ellipses, while a real
z (PR) moves every joint in step, back and forth on a line.

- WMs: a few slow components (0.1-0.6 Hz) per limb, independent across limbs, large amplitude, with
  slowly varying speed (time warp) and amplitude (envelope).
- FMs: small circles at a moderate, jittering rate (about 1-2.5 Hz) in every limb, the neck and the
  trunk, turning direction now and then, over a small slow drift; continual, variable acceleration.
- PR: a few limbs in synchrony on one fixed period with a jerky, square-ish waveform, little
  variation in amplitude or rate, the rest of the body almost still, plus occasional abrupt steps.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d

from ..subjects import GM_CLASSES

#: Every random time series is drawn on this clock and resampled at the video's frame times, so
#: one infant moves the same way, second by second, at any frame rate (25, 30, 50, 60 fps ...).
#: It is the default frame rate, whose videos therefore hold the reference samples themselves.
REFERENCE_FPS = 30

_SIDE_DOFS = (
    "shoulder",
    "shoulder_elev",
    "elbow",
    "forearm_elev",
    "wrist",
    "hip",
    "hip_elev",
    "knee",
    "knee_elev",
    "ankle",
)
POSE_DOFS = (
    "trunk_rot",
    "trunk_bend",
    "trunk_dx",
    "trunk_dy",
    "neck",
    "head_yaw",
    *(f"{side}_{dof}" for side in ("l", "r") for dof in _SIDE_DOFS),
)

# Body part -> (joint, range in radians or trunk lengths, phase offset of the elliptical partner).
_ELLIPSE = np.pi / 2
_PARTS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "trunk": (
        ("trunk_rot", 0.12, 0.0),
        ("trunk_bend", 0.1, _ELLIPSE),
        ("trunk_dx", 0.04, 0.0),
        ("trunk_dy", 0.04, _ELLIPSE),
    ),
    "head": (("neck", 0.3, 0.0), ("head_yaw", 0.5, _ELLIPSE)),
}
for _side in ("l", "r"):
    _PARTS[f"{_side}_arm"] = (
        (f"{_side}_shoulder", 0.7, 0.0),
        (f"{_side}_shoulder_elev", 0.4, _ELLIPSE),
        (f"{_side}_elbow", 0.6, 1.0),
        (f"{_side}_forearm_elev", 0.4, 1.0 + _ELLIPSE),
        (f"{_side}_wrist", 0.4, 2.0),
    )
    _PARTS[f"{_side}_leg"] = (
        (f"{_side}_hip", 0.4, 0.0),
        (f"{_side}_hip_elev", 0.45, _ELLIPSE),
        (f"{_side}_knee", 0.6, 0.8),
        (f"{_side}_knee_elev", 0.35, 0.8 + _ELLIPSE),
        (f"{_side}_ankle", 0.4, 1.6),
    )
LIMBS = ("l_arm", "r_arm", "l_leg", "r_leg")

# Elevation towards the camera stays in [0, 1.35] rad so projected lengths stay positive.
_ELEVATIONS = tuple(d for d in POSE_DOFS if d.endswith("_elev"))


def rest_pose(rng: np.random.Generator) -> np.ndarray:
    """A supine infant's resting posture (arms flexed, legs in a frog position), (D,)."""
    pose = dict.fromkeys(POSE_DOFS, 0.0)
    pose.update(
        trunk_bend=rng.uniform(-0.1, 0.1),
        neck=rng.uniform(-0.3, 0.3),
        head_yaw=rng.uniform(-0.5, 0.5),
    )
    for side in ("l", "r"):
        pose.update(
            {
                f"{side}_shoulder": rng.uniform(0.2, 1.1),
                f"{side}_shoulder_elev": rng.uniform(0.2, 0.5),
                f"{side}_elbow": rng.uniform(0.5, 1.7),
                f"{side}_forearm_elev": rng.uniform(0.2, 0.6),
                f"{side}_wrist": rng.uniform(-0.3, 0.3),
                f"{side}_hip": rng.uniform(0.9, 1.35),
                f"{side}_hip_elev": rng.uniform(0.3, 0.9),
                f"{side}_knee": rng.uniform(0.2, 0.9),
                f"{side}_knee_elev": rng.uniform(0.05, 0.4),
                f"{side}_ankle": rng.uniform(-0.4, 0.4),
            }
        )
    return np.array([pose[name] for name in POSE_DOFS])


def reference_length(num_frames: int, fps: float) -> int:
    """Samples on the reference clock for a clip of ``num_frames`` at ``fps`` (same seconds).

    Clips of equal length in seconds get equal reference lengths, hence equal random draws.
    """
    return max(2, round(num_frames * REFERENCE_FPS / fps))


def resample(signal: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
    """A reference-clock signal (N, ...) at the frame times ``t / fps`` of a video, (T, ...).

    Frame times that fall on a reference sample take it exactly; the others are interpolated
    by a cubic spline (extrapolated by under one sample at the very end).
    """
    positions = np.arange(num_frames) * REFERENCE_FPS / fps
    nearest = np.rint(positions).astype(np.int64)
    exact = (np.abs(positions - nearest) < 1e-9) & (nearest < len(signal))
    if exact.all():
        return signal[nearest]
    out = CubicSpline(np.arange(len(signal)), signal, axis=0)(positions)
    out[exact] = signal[nearest[exact]]
    return out


def smooth_noise(
    rng: np.random.Generator, num_frames: int, fps: float, cutoff_hz: float
) -> np.ndarray:
    """Gaussian noise low-passed near ``cutoff_hz``, scaled to unit standard deviation, (T,)."""
    sigma = fps / (2 * np.pi * cutoff_hz)
    pad = int(3 * sigma) + 1
    noise = gaussian_filter1d(rng.standard_normal(num_frames + 2 * pad), sigma)[pad:-pad]
    return noise / max(noise.std(), 1e-9)


def _writhing(rng, num_frames, fps, amplitude) -> np.ndarray:
    """Sum of slow components on a warped clock with a varying envelope, complex (T,)."""
    speed = np.exp(0.45 * smooth_noise(rng, num_frames, fps, 0.1))
    clock = np.cumsum(speed) / fps
    freqs = np.exp(rng.uniform(np.log(0.1), np.log(0.6), 3))
    weights = rng.uniform(0.3, 1.0, 3) * np.exp(1j * rng.uniform(0, 2 * np.pi, 3))
    z = (weights * np.exp(2j * np.pi * np.outer(clock, freqs))).sum(1)
    envelope = 0.35 + 0.65 / (1 + np.exp(-1.5 * smooth_noise(rng, num_frames, fps, 0.08)))
    return amplitude * envelope * z / np.sqrt((np.abs(z) ** 2).mean())


def _fidgety(rng, num_frames, fps, amplitude, base_hz) -> np.ndarray:
    """Small circles at a jittering rate that turn direction now and then, complex (T,)."""
    rate = base_hz * np.exp(0.3 * smooth_noise(rng, num_frames, fps, 1.0))
    turning = np.tanh(2.0 * (smooth_noise(rng, num_frames, fps, 0.15) + rng.uniform(-0.5, 0.5)))
    angle = 2 * np.pi * np.cumsum(rate * turning) / fps
    radius = amplitude * (0.7 + 0.3 * smooth_noise(rng, num_frames, fps, 0.5).clip(-2, 2) / 2)
    drift = 0.25 * _writhing(rng, num_frames, fps, amplitude)
    return (
        radius * np.exp(1j * (angle + rng.uniform(0, 2 * np.pi))) * (1 + 0.4j * rng.uniform(-1, 1))
        + drift
    )


def _jerky_wave(phase: np.ndarray, sharpness: float) -> np.ndarray:
    """A square-ish wave: abrupt reversals, flat plateaus (sharpness < 1 flattens the sine)."""
    s = np.sin(phase)
    return np.sign(s) * np.abs(s) ** sharpness


def _poor_repertoire(rng, num_frames, fps, amplitude, frequency, sharpness, phase) -> np.ndarray:
    """One monotonous back-and-forth line at a fixed rate, complex (T,) with a real waveform."""
    t = np.arange(num_frames) / fps
    jitter = 1 + 0.02 * smooth_noise(rng, num_frames, fps, 0.05)
    wave = _jerky_wave(2 * np.pi * frequency * t * jitter + phase, sharpness)
    steps = np.cumsum(rng.standard_normal(num_frames) * (rng.random(num_frames) < 0.4 / fps)) * 0.15
    gain = amplitude * (1 + 0.04 * smooth_noise(rng, num_frames, fps, 0.1))
    # The line runs at one fixed tilt in the (angle, elevation) plane: no ellipse.
    return gain * wave * np.exp(1j * rng.uniform(-0.3, 0.3)) + amplitude * (steps - steps.mean())


def _class_signals(
    label: str, rng: np.random.Generator, num_frames: int, fps: float
) -> dict[str, np.ndarray]:
    """Complex drive signal (T,) of every body part, as the class prescribes."""
    if label == "WMs":
        amplitude = rng.uniform(0.45, 1.2)
        return {part: _writhing(rng, num_frames, fps, amplitude) for part in _PARTS}
    if label == "FMs":
        amplitude, base_hz = rng.uniform(0.12, 0.35), rng.uniform(1.0, 2.5)
        return {
            part: _fidgety(rng, num_frames, fps, amplitude, base_hz * rng.uniform(0.8, 1.25))
            for part in _PARTS
        }
    if label == "PR":
        amplitude, frequency = rng.uniform(0.3, 0.8), rng.uniform(0.6, 1.6)
        sharpness, phase = rng.uniform(0.25, 0.6), rng.uniform(0, 2 * np.pi)
        moving = set(rng.choice(LIMBS, size=rng.integers(2, 5), replace=False))
        still = rng.uniform(0.05, 0.3)
        return {
            part: _poor_repertoire(
                rng, num_frames, fps, amplitude, frequency, sharpness, phase + rng.normal(0, 0.1)
            )
            if part in moving
            else _writhing(rng, num_frames, fps, still)
            for part in _PARTS
        }
    raise ValueError(f"unknown GM class {label!r}; expected one of {GM_CLASSES}")


def _part_signals(
    label: str, rng: np.random.Generator, num_frames: int, fps: float
) -> dict[str, np.ndarray]:
    """Class signals plus what varies between infants of any class: how much the head and trunk
    take part, and slow posture drifts of random size (so no single statistic gives the class)."""
    signals = _class_signals(label, rng, num_frames, fps)
    core = rng.uniform(0.2, 1.2)
    drift = rng.uniform(0.0, 0.3)
    for part in _PARTS:
        if part in ("head", "trunk"):
            signals[part] = signals[part] * core
        signals[part] = signals[part] + _writhing(rng, num_frames, fps, drift)
    return signals


def joint_trajectories(
    label: str, num_frames: int, fps: float, rng: np.random.Generator
) -> np.ndarray:
    """Joint angles of one subject over time.

    Args:
        label: GM class, one of ``GM_CLASSES``.
        num_frames: T.
        fps: frames per second, so rates are in Hz whatever the frame rate.
        rng: the subject's motion random stream.

    Returns:
        (T, len(POSE_DOFS)) float64 joint angles (radians; trunk shifts in trunk lengths), drawn
        on the reference clock (:data:`REFERENCE_FPS`) and resampled at the frame times, so the
        same ``rng`` and length in seconds give the same movement at any frame rate.
    """
    steps = reference_length(num_frames, fps)
    pose = np.tile(rest_pose(rng), (steps, 1))
    signals = _part_signals(label, rng, steps, REFERENCE_FPS)
    column = {name: i for i, name in enumerate(POSE_DOFS)}
    for part, joints in _PARTS.items():
        for joint, joint_range, phase in joints:
            # A little per-joint phase noise keeps limbs from looking mechanically identical.
            rotation = np.exp(1j * (phase + rng.normal(0, 0.25)))
            pose[:, column[joint]] += joint_range * (signals[part] * rotation).real
    elevations = [column[name] for name in _ELEVATIONS]
    pose[:, elevations] = np.abs(pose[:, elevations]).clip(0, 1.35)
    pose = resample(pose, num_frames, fps)
    pose[:, elevations] = pose[:, elevations].clip(0, 1.35)  # a spline may overshoot a little
    return pose
