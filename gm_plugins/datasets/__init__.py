"""Datasets, transforms and the synthetic infant generator, registered into MMAction2."""

from . import transforms
from .gm_dataset import GMDataset
from .loading import LoadCachedWindow, PackStreamInputs, PackTwoStreamInputs
from .skeleton import LoadCachedKeypoints
from .subjects import GM_CLASSES, read_subjects

__all__ = [
    "GM_CLASSES",
    "GMDataset",
    "LoadCachedKeypoints",
    "LoadCachedWindow",
    "PackStreamInputs",
    "PackTwoStreamInputs",
    "read_subjects",
    "transforms",
]
