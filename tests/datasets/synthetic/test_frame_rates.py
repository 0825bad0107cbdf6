"""One seed, any frame rate: the same infant makes the same movement, second by second."""

from __future__ import annotations

import numpy as np
import pytest

from gm_plugins.datasets.synthetic import (
    GM_CLASSES,
    REFERENCE_FPS,
    EmptyScene,
    EmptySceneSpec,
    SubjectSpec,
    SyntheticSubject,
    joint_trajectories,
)
from gm_plugins.datasets.synthetic.motion import resample

RATES = (25, 30, 50, 60)
SECONDS = 2.0
SIZE = (96, 72)
# Times (s) that are frames at every rate: multiples of 0.2 s.
SHARED_TIMES = np.arange(0, SECONDS, 0.2)


def _frames_at_shared_times(renderer, fps: int) -> np.ndarray:
    renderer.sensor.expose = lambda rgb, t: None  # camera noise is per frame, not motion
    return np.stack([renderer.render(round(time * fps))[0] for time in SHARED_TIMES])


@pytest.mark.parametrize("label", GM_CLASSES)
def test_infant_and_distractors_are_the_same_at_shared_times(label):
    # clutter scenes always hold a distractor (ball, caregiver's hand or toy)
    spec = SubjectSpec("s0000", label, "clutter", seed=11, group=0, index=GM_CLASSES.index(label))
    subjects = {fps: SyntheticSubject(spec, SIZE, fps, round(SECONDS * fps)) for fps in RATES}
    assert subjects[30].distractors
    reference = subjects[REFERENCE_FPS]
    frames = _frames_at_shared_times(reference, REFERENCE_FPS)
    for fps, subject in subjects.items():
        picks = np.round(SHARED_TIMES * fps).astype(int)
        reference_picks = np.round(SHARED_TIMES * REFERENCE_FPS).astype(int)
        assert np.allclose(
            subject.keypoints[picks], reference.keypoints[reference_picks], atol=1e-4
        )
        assert np.array_equal(_frames_at_shared_times(subject, fps), frames), fps


@pytest.mark.parametrize("label", GM_CLASSES)
def test_speeds_agree_between_rates(label):
    """Frames between the shared times follow the same motion: the same joint speed per second."""
    seconds, speeds = 20, {}  # the default clip length
    for fps in RATES:
        pose = joint_trajectories(label, seconds * fps, fps, np.random.default_rng(5))
        speeds[fps] = np.abs(np.diff(pose, axis=0)).sum() / seconds
    assert max(speeds.values()) / min(speeds.values()) < 1.05, speeds


def test_the_reference_rate_takes_the_reference_samples():
    signal = np.random.default_rng(0).standard_normal((60, 3))
    assert np.array_equal(resample(signal, 60, REFERENCE_FPS), signal)
    assert np.array_equal(resample(signal, 30, REFERENCE_FPS / 2), signal[::2])
    doubled = resample(signal, 120, 2 * REFERENCE_FPS)
    assert np.array_equal(doubled[::2], signal) and np.isfinite(doubled).all()
    between = doubled[1:-1:2]  # interpolated, near the neighbours' mean
    assert np.abs(between - (signal[:-1] + signal[1:]) / 2).mean() < np.abs(signal).mean()


def test_empty_scenes_move_alike_at_any_rate():
    for kind in ("distractor", "texture"):
        spec = EmptySceneSpec("e0000", kind, "sheet", seed=2, index=0)
        frames = {
            fps: _frames_at_shared_times(EmptyScene(spec, SIZE, fps, round(SECONDS * fps)), fps)
            for fps in RATES
        }
        assert all(np.array_equal(frames[fps], frames[REFERENCE_FPS]) for fps in RATES), kind
