"""A tiny in-memory clip dataset, registered for tests only (``custom_imports``)."""

from __future__ import annotations

import torch
from mmaction.registry import DATASETS
from mmaction.structures import ActionDataSample
from torch.utils.data import Dataset


@DATASETS.register_module(force=True)
class ToyClipDataset(Dataset):
    """``length`` clips of ``num_segments`` RGB frames (0-255) whose label is ``index % 3``.

    Class ``k`` is brighter by ``40 * k`` so a model can learn something in a few steps.
    """

    metainfo = dict(classes=("WMs", "FMs", "PR"))

    def __init__(self, length: int = 6, num_segments: int = 2, size: int = 32, **kwargs) -> None:
        self.length, self.num_segments, self.size = length, num_segments, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        label = index % 3
        generator = torch.Generator().manual_seed(index)
        frames = torch.rand(self.num_segments, 3, self.size, self.size, generator=generator)
        frames = frames * 100 + 40 * label
        sample = ActionDataSample().set_gt_label(label)
        return dict(inputs=frames, data_samples=sample)
