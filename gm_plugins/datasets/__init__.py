"""Datasets, transforms and the synthetic infant generator, registered into MMAction2."""

from . import transforms
from .gm_dataset import GM_CLASSES, GMDataset, read_subjects
from .loading import LoadCachedWindow, PackTwoStreamInputs
from .skeleton import LoadCachedKeypoints

__all__ = [
    "GM_CLASSES",
    "GMDataset",
    "LoadCachedKeypoints",
    "LoadCachedWindow",
    "PackTwoStreamInputs",
    "read_subjects",
    "transforms",
]
