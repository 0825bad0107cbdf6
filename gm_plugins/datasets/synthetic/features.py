"""Per-subject features that check what the synthetic classes encode.

``keypoint_features`` summarises ground-truth keypoint trajectories (amplitude, speed, spectrum,
periodicity, synchrony); a classifier on them should separate the classes. ``background_features``
describes only the pixels outside the infant (colour and texture); a classifier on them should be at
chance when environment and class are independent (``--confound 0``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import welch

from ..subjects import read_subjects, resolve_video

_GROUPS = {"arms": [7, 8, 9, 10], "legs": [13, 14, 15, 16], "head": [0, 1, 2]}
_BANDS_HZ = (0.0, 0.5, 1.0, 2.0, 4.0, np.inf)


def body_frame_tracks(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints relative to the trunk centre, in trunk lengths, with the trunk turned upright.

    Args:
        keypoints: (T, 17, 3) pixel x, y, visibility.

    Returns:
        tracks (T, 17, 2) and the trunk angle relative to its median (T,) in radians.
    """
    xy = keypoints[..., :2].astype(np.float64)
    shoulders, hips = xy[:, 5:7].mean(1), xy[:, 11:13].mean(1)
    axis = hips - shoulders
    angle = np.arctan2(axis[:, 1], axis[:, 0])
    reference = np.angle(np.exp(1j * angle).mean())
    turn = np.pi / 2 - reference  # one rotation per video, as the alignment stage does
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    length = np.median(np.linalg.norm(axis, axis=1))
    tracks = (xy - ((shoulders + hips) / 2)[:, None]) @ rotation.T / length
    return tracks, np.angle(np.exp(1j * (angle - reference)))


def _spectral(signal: np.ndarray, fps: float) -> np.ndarray:
    """Band fractions of the velocity power and the peak share of position power; signal (T, K)."""
    velocity = np.diff(signal, axis=0) * fps
    freqs, power = welch(velocity, fs=fps, nperseg=min(len(velocity), int(4 * fps)), axis=0)
    power = power.sum(1)
    total = power.sum() + 1e-12
    bands = [
        power[(freqs >= lo) & (freqs < hi)].sum() / total
        for lo, hi in itertools.pairwise(_BANDS_HZ)
    ]
    _, position_power = welch(
        signal - signal.mean(0), fs=fps, nperseg=min(len(signal), int(4 * fps)), axis=0
    )
    position_power = position_power.sum(1)[1:]
    return np.array([*bands, position_power.max() / (position_power.sum() + 1e-12)])


def _periodicity(signal: np.ndarray, fps: float) -> float:
    """Highest autocorrelation at lags of 0.3-3 s of a (T, K) signal, averaged over K."""
    centred = signal - signal.mean(0)
    lags = range(max(1, int(0.3 * fps)), min(len(signal) // 2, int(3 * fps)) + 1)
    norm = (centred**2).sum(0) + 1e-12
    best = [((centred[lag:] * centred[:-lag]).sum(0) / norm).mean() for lag in lags]
    return float(max(best)) if best else 0.0


def _group_features(tracks: np.ndarray, fps: float) -> list[float]:
    """Features of one body-part group, tracks (T, K, 2)."""
    flat = tracks.reshape(len(tracks), -1)
    velocity = np.diff(tracks, axis=0) * fps
    speed = np.linalg.norm(velocity, axis=-1)
    jerk = np.linalg.norm(np.diff(velocity, n=2, axis=0), axis=-1) * fps**2
    window = max(1, int(fps))
    smoothed = np.convolve(speed.mean(1), np.ones(window) / window, mode="valid")
    return [
        float(np.sqrt(tracks.var(0).sum(-1)).mean()),
        float(speed.mean()),
        float(smoothed.std() / (smoothed.mean() + 1e-9)),
        float(np.log(jerk.mean() / (speed.mean() * fps + 1e-9) + 1e-9)),
        _periodicity(flat, fps),
        *_spectral(flat, fps),
    ]


def _synchrony(tracks: np.ndarray) -> list[float]:
    """Correlation of speeds between left and right wrists, ankles, and arms vs legs."""
    speed = np.linalg.norm(np.diff(tracks, axis=0), axis=-1)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1]) if a.std() > 1e-9 and b.std() > 1e-9 else 0.0

    return [
        corr(speed[:, 9], speed[:, 10]),
        corr(speed[:, 15], speed[:, 16]),
        corr(speed[:, 9:11].mean(1), speed[:, 15:17].mean(1)),
    ]


def keypoint_features(keypoints: np.ndarray, fps: float) -> np.ndarray:
    """Movement features of one subject from keypoints (T, 17, 3); returns (F,) float64."""
    tracks, trunk_angle = body_frame_tracks(keypoints)
    features = []
    for indices in _GROUPS.values():
        features += _group_features(tracks[:, indices], fps)
    features += _synchrony(tracks)
    features += [float(trunk_angle.std()), float(np.abs(np.diff(trunk_angle)).mean() * fps)]
    return np.array(features)


def mean_speed(keypoints: np.ndarray, fps: float) -> float:
    """Mean speed of wrists and ankles (trunk lengths per second): one frame-level statistic."""
    tracks, _ = body_frame_tracks(keypoints)
    return float(np.linalg.norm(np.diff(tracks[:, [9, 10, 15, 16]], axis=0), axis=-1).mean() * fps)


def background_features(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Colour and texture outside the infant; frames (N, H, W, 3) RGB, masks (N, H, W), (G,)."""
    features = []
    for frame, mask in zip(frames, masks, strict=True):
        # Skip a margin around the infant so no anti-aliased body edge leaks into the statistics.
        outside = cv2.dilate(mask, np.ones((5, 5), np.uint8)) == 0
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)[outside].astype(np.float64)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))[
            outside
        ]
        hue = np.histogram(hsv[:, 0], 12, (0, 180), weights=hsv[:, 1] / 255)[0]
        sat = np.histogram(hsv[:, 1], 6, (0, 256))[0]
        val = np.histogram(hsv[:, 2], 6, (0, 256))[0]
        texture = np.histogram(np.log1p(gradient), 8, (0, 7))[0]
        features.append(np.concatenate([hue, sat, val, texture]) / max(outside.sum(), 1))
    return np.mean(features, axis=0)


def dataset_features(dataset_dir: str | Path, frames_per_video: int = 4) -> dict[str, np.ndarray]:
    """Keypoint, background and mean-speed features of every subject of a generated dataset.

    Background features use decoded video frames (what a model would see) and the stored masks.
    Returns ``keypoint`` (N, F), ``background`` (N, G), ``speed`` (N, 1) and ``labels`` (N,).
    """
    dataset_dir = Path(dataset_dir)
    keypoint, background, speed, labels = [], [], [], []
    for row in read_subjects(dataset_dir / "subjects.csv"):
        gt = np.load(dataset_dir / "gt" / f"{row['subject_id']}.npz")
        fps = float(gt["fps"])
        keypoint.append(keypoint_features(gt["keypoints"], fps))
        speed.append([mean_speed(gt["keypoints"], fps)])
        picks = np.linspace(0, len(gt["masks"]) - 1, frames_per_video).round().astype(int)
        frames = read_frames(resolve_video(dataset_dir, row["video"]), picks)
        background.append(background_features(frames, gt["masks"][picks]))
        labels.append(row["label"])
    return {
        "keypoint": np.array(keypoint),
        "background": np.array(background),
        "speed": np.array(speed),
        "labels": np.array(labels),
    }


def read_frames(path: str | Path, indices: np.ndarray) -> np.ndarray:
    """Decode the frames at ``indices`` of a video with OpenCV, (N, H, W, 3) RGB uint8."""
    capture = cv2.VideoCapture(str(path))
    wanted, frames, t = set(int(i) for i in indices), {}, 0
    while len(frames) < len(wanted):
        ok, frame = capture.read()
        if not ok:
            raise OSError(f"{path}: could not decode frame {t}")
        if t in wanted:
            frames[t] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        t += 1
    capture.release()
    return np.stack([frames[int(i)] for i in indices])


def cross_validated_accuracy(
    features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> float:
    """Subject-level accuracy of a random forest under stratified k-fold cross-validation."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    classifier = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(classifier, features, labels, cv=splitter).mean())
