"""Synthetic infant videos with ground truth for every stage (mask, keypoints, GM class).

Real GMA recordings are private; this generator renders supine infants whose movements follow the
clinical descriptions of writhing (WMs), fidgety (FMs) and poor-repertoire (PR) movements, in
varied recording environments. See ``tools/make_synthetic_dataset.py`` for the command line.
"""

from .body import COCO_KEYPOINTS, COCO_SKELETON
from .generate import GENERATOR_VERSION, GeneratorConfig, generate_dataset, generate_subject
from .motion import GM_CLASSES, joint_trajectories
from .preview import contact_sheet, draw_keypoints
from .scenes import CONFOUND_FAMILIES, ENVIRONMENTS
from .subject import SubjectSpec, SyntheticSubject, make_specs

__all__ = [
    "COCO_KEYPOINTS",
    "COCO_SKELETON",
    "CONFOUND_FAMILIES",
    "ENVIRONMENTS",
    "GENERATOR_VERSION",
    "GM_CLASSES",
    "GeneratorConfig",
    "SubjectSpec",
    "SyntheticSubject",
    "contact_sheet",
    "draw_keypoints",
    "generate_dataset",
    "generate_subject",
    "joint_trajectories",
    "make_specs",
]
