"""Synthetic infant videos with ground truth for every stage (mask, keypoints, GM class).

Real GMA recordings are private; this generator renders supine infants whose movements follow the
clinical descriptions of writhing (WMs), fidgety (FMs) and poor-repertoire (PR) movements, in
varied recording environments. See ``tools/data/make_synthetic_dataset.py`` for the command line.
"""

from .body import COCO_KEYPOINTS, COCO_SKELETON
from .empty import EMPTY_SCENE_KINDS, EmptyScene, EmptySceneSpec, make_empty_specs
from .generate import (
    EMPTY_SCENES_TABLE,
    GENERATOR_VERSION,
    SUBJECTS_TABLE,
    GeneratorConfig,
    generate_dataset,
    generate_empty_scene,
    generate_subject,
)
from .motion import GM_CLASSES, REFERENCE_FPS, joint_trajectories
from .preview import contact_sheet, draw_keypoints
from .scenes import CONFOUND_FAMILIES, ENVIRONMENTS
from .subject import SubjectSpec, SyntheticSubject, make_specs

__all__ = [
    "COCO_KEYPOINTS",
    "COCO_SKELETON",
    "CONFOUND_FAMILIES",
    "EMPTY_SCENES_TABLE",
    "EMPTY_SCENE_KINDS",
    "ENVIRONMENTS",
    "GENERATOR_VERSION",
    "GM_CLASSES",
    "REFERENCE_FPS",
    "SUBJECTS_TABLE",
    "EmptyScene",
    "EmptySceneSpec",
    "GeneratorConfig",
    "SubjectSpec",
    "SyntheticSubject",
    "contact_sheet",
    "draw_keypoints",
    "generate_dataset",
    "generate_empty_scene",
    "generate_subject",
    "joint_trajectories",
    "make_empty_specs",
    "make_specs",
]
