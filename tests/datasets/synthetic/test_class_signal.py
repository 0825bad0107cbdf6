"""The classes live in the motion, not in the scenery (unless --confound asks for it)."""

import dataclasses

import numpy as np
import pytest

from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
from gm_plugins.datasets.synthetic.features import cross_validated_accuracy, dataset_features

SMALL = GeneratorConfig(
    subjects=36, seconds=8.0, fps=15, width=64, height=48, seed=5, prep_subjects=0
)


@pytest.fixture(scope="module")
def features_by_confound(tmp_path_factory):
    out = tmp_path_factory.mktemp("class_signal")
    result = {}
    for confound in (0.0, 1.0):
        directory = out / f"p{confound}"
        generate_dataset(
            directory, dataclasses.replace(SMALL, confound=confound), workers=2, progress=False
        )
        result[confound] = dataset_features(directory, frames_per_video=3)
    return result


def test_keypoint_trajectories_separate_the_classes(features_by_confound):
    features = features_by_confound[0.0]
    assert cross_validated_accuracy(features["keypoint"], features["labels"]) >= 0.8


def test_mean_speed_alone_does_not_give_the_class(features_by_confound):
    features = features_by_confound[0.0]
    assert cross_validated_accuracy(features["speed"], features["labels"]) < 0.7


def test_background_predicts_the_class_only_under_confounding(features_by_confound):
    independent = cross_validated_accuracy(
        features_by_confound[0.0]["background"], features_by_confound[0.0]["labels"]
    )
    confounded = cross_validated_accuracy(
        features_by_confound[1.0]["background"], features_by_confound[1.0]["labels"]
    )
    assert independent < 0.55  # chance is 1/3
    assert confounded > 0.75


def test_confound_changes_environments_but_not_motion(features_by_confound):
    assert np.array_equal(features_by_confound[0.0]["labels"], features_by_confound[1.0]["labels"])
    assert np.allclose(
        features_by_confound[0.0]["keypoint"][:, :5], features_by_confound[1.0]["keypoint"][:, :5]
    )
