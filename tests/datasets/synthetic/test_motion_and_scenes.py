import cv2
import numpy as np
import pytest

from gm_plugins.datasets.synthetic import (
    CONFOUND_FAMILIES,
    ENVIRONMENTS,
    GM_CLASSES,
    joint_trajectories,
)
from gm_plugins.datasets.synthetic.distractors import DISTRACTORS
from gm_plugins.datasets.synthetic.motion import POSE_DOFS
from gm_plugins.datasets.synthetic.scenes import (
    Sensor,
    choose_environment,
    make_background,
    sample_scene,
)


@pytest.mark.parametrize("label", GM_CLASSES)
def test_trajectories_are_finite_reproducible_and_keep_elevations_valid(label):
    pose = joint_trajectories(label, 90, 30, np.random.default_rng(4))
    again = joint_trajectories(label, 90, 30, np.random.default_rng(4))
    assert pose.shape == (90, len(POSE_DOFS)) and np.isfinite(pose).all()
    assert np.array_equal(pose, again)
    elevations = [i for i, name in enumerate(POSE_DOFS) if name.endswith("_elev")]
    assert (pose[:, elevations] >= 0).all() and (pose[:, elevations] <= 1.35).all()
    assert pose.std(0).max() > 0.01  # the infant moves


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown GM class"):
        joint_trajectories("CS", 10, 30, np.random.default_rng(0))


def test_confound_ties_environment_to_class_only_when_asked():
    rng = np.random.default_rng(0)
    for label in GM_CLASSES:
        tied = {choose_environment(label, 1.0, rng) for _ in range(200)}
        free = {choose_environment(label, 0.0, rng) for _ in range(200)}
        assert tied == set(CONFOUND_FAMILIES[label])
        assert free == set(ENVIRONMENTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_backgrounds_and_sensor_give_valid_frames(environment):
    rng = np.random.default_rng(1)
    scene = sample_scene(environment, rng)
    background = make_background(scene, (64, 48), rng)
    assert background.shape == (48, 64, 3) and background.dtype == np.uint8
    assert background.std() > 1  # textured or shaded, never a flat fill
    frame = background.copy()
    Sensor(scene, (64, 48), rng, 5).expose(frame, 4)
    assert frame.shape == background.shape and frame.dtype == np.uint8


def test_families_differ_in_appearance():
    means = {}
    for environment in ENVIRONMENTS:
        rng = np.random.default_rng(2)
        means[environment] = make_background(sample_scene(environment, rng), (64, 48), rng).mean()
    assert len({round(m) for m in means.values()}) > 3


@pytest.mark.parametrize("kind", sorted(DISTRACTORS))
def test_distractor_covers_what_it_draws(kind):
    size, rng = (64, 48), np.random.default_rng(5)
    distractor = DISTRACTORS[kind](rng, 60, 15, size, np.array([32.0, 24.0]), 14.0)
    grid = np.stack(np.meshgrid(np.arange(64), np.arange(48)), -1).reshape(-1, 2).astype(float)
    covers = distractor.covers(np.broadcast_to(grid, (60, *grid.shape)))
    drawn_any = False
    for t in range(60):
        canvas = np.full((48, 64, 4), 255, np.uint8)
        distractor.draw(canvas, t)
        drawn = (canvas[..., 3] < 128).reshape(-1)
        drawn_any |= drawn.any()
        assert not (drawn & ~covers[t]).any()  # every pixel it hides is reported as covered
    assert drawn_any
    assert cv2.countNonZero(canvas[..., 3]) > 0
