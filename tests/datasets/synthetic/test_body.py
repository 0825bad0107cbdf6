import cv2
import numpy as np
import pytest

from gm_plugins.datasets.synthetic import COCO_KEYPOINTS, SubjectSpec, SyntheticSubject
from gm_plugins.datasets.synthetic.body import forward_kinematics, sample_body_shape
from gm_plugins.datasets.synthetic.motion import POSE_DOFS, joint_trajectories

SIZE = (96, 72)


def _subjects():
    for index, (label, environment) in enumerate(
        [("WMs", "sheet"), ("FMs", "clutter"), ("PR", "quilt"), ("WMs", "towel")]
    ):
        yield SyntheticSubject(
            SubjectSpec(f"t{index}", label, environment, 11, 5, index), SIZE, 15, 30
        )


def test_forward_kinematics_gives_one_point_per_frame():
    rng = np.random.default_rng(0)
    shape = sample_body_shape(rng)
    pose = joint_trajectories("FMs", 20, 15, rng)
    joints = forward_kinematics(shape, pose)
    assert pose.shape == (20, len(POSE_DOFS))
    for name in ("neck", "crotch", "head", "l_wrist", "r_ankle", *COCO_KEYPOINTS):
        assert joints[name].shape == (20, 2), name
    assert joints["trunk_outline"].shape[::2] == (20, 2)
    # The trunk is one trunk length long at rest whatever the pose.
    trunk = np.linalg.norm(joints["crotch"] - joints["neck"], axis=1)
    assert np.allclose(trunk, 1.0, atol=0.05)


def test_keypoints_are_exact_and_well_typed():
    subject = next(_subjects())
    kp = subject.keypoints
    assert kp.shape == (30, 17, 3) and kp.dtype == np.float32
    assert set(np.unique(kp[..., 2])) <= {0.0, 1.0, 2.0}
    shoulders = kp[:, 5:7, :2]
    assert np.all(np.linalg.norm(shoulders[:, 0] - shoulders[:, 1], axis=1) > 1)


def test_mask_is_exactly_where_the_body_is_drawn():
    # On a constant background every masked pixel changes, and every visibly changed pixel lies in
    # the mask or its one-pixel anti-aliased rim (anti-aliasing also tints a few pixels by 1-3 %).
    background = np.array([0, 255, 0], np.uint8)
    for subject in _subjects():
        subject.distractors = []
        for t in (0, 12, 29):
            _, mask = subject.render(t)
            drawn = subject.clean_render(t, (0, 255, 0))
            difference = np.abs(drawn.astype(int) - background).max(-1)
            changed = difference > 0
            assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
            assert changed[mask == 1].all()
            rim = cv2.dilate(mask, np.ones((3, 3), np.uint8))
            assert not ((difference > 8) & (rim == 0)).any()
            assert mask.sum() > 0.5 * changed.sum()


@pytest.mark.parametrize("t", [0, 7, 21])
def test_visible_keypoints_lie_on_the_rendered_infant(t):
    for subject in _subjects():
        _, mask = subject.render(t)
        for x, y, visibility in subject.keypoints[t]:
            if visibility == 2:
                assert mask[round(y), round(x)] == 1, (subject.spec, t, x, y)


def test_keypoints_hidden_by_a_distractor_are_flagged():
    hidden = 0
    for index in range(40):
        subject = SyntheticSubject(
            SubjectSpec(f"d{index}", "WMs", "clutter", 2, 6, index), SIZE, 15, 60
        )
        for distractor in subject.distractors:
            covered = distractor.covers(subject.keypoints[..., :2]) & (
                subject.keypoints[..., 2] > 0
            )
            assert (subject.keypoints[..., 2][covered] == 1).all()
            hidden += covered.sum()
    assert hidden > 0
