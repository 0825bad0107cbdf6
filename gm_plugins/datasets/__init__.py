"""Datasets of cached videos, their dataloader transforms and the synthetic infant generator,
registered into MMAction2."""

from . import transforms
from .gm_dataset import GMDataset
from .subjects import GM_CLASSES, read_subjects
from .transforms import LoadCachedKeypoints, LoadCachedWindow, PackStreamInputs

__all__ = [
    "GM_CLASSES",
    "GMDataset",
    "LoadCachedKeypoints",
    "LoadCachedWindow",
    "PackStreamInputs",
    "read_subjects",
    "transforms",
]
