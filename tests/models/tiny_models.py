"""Tiny recognizer configs (one or two streams) and batches, small enough for CPU tests."""

from __future__ import annotations

import copy

import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.config import ConfigDict

from gm_plugins.compat import library_scope

# ResNet-18 cut after two stages: 128-channel maps at stride 8.
TINY_RESNET = dict(
    type="ResNet",
    depth=18,
    pretrained=None,
    num_stages=2,
    out_indices=(1,),
    strides=(1, 2),
    dilations=(1, 1),
)
# A two-stage ResNet3d-18 with 8 base channels: 16-channel maps at spatial stride 8.
TINY_RESNET3D = dict(
    type="ResNet3d",
    depth=18,
    pretrained=None,
    pretrained2d=False,
    base_channels=8,
    num_stages=2,
    out_indices=(1,),
    spatial_strides=(1, 2),
    temporal_strides=(1, 1),
    dilations=(1, 1),
    inflate=(1, 1),
    conv1_stride_t=1,
    pool1_stride_t=1,
    with_pool2=False,
)
TINY_HEAD = dict(type="FusionClsHead", num_classes=3, dropout_ratio=0.0, average_clips="prob")


def recognizer_config(
    rgb_backbone: dict | None = None,
    flow_backbone: dict | None = None,
    fusion: dict | None = None,
    head_channels: int = 128,
    **kwargs,
) -> ConfigDict:
    """A ``MultiStreamRecognizer`` config with the given parts and a ``FusionClsHead``."""
    cfg = dict(
        type="MultiStreamRecognizer",
        rgb_backbone=copy.deepcopy(rgb_backbone),
        flow_backbone=copy.deepcopy(flow_backbone),
        fusion=copy.deepcopy(fusion),
        cls_head=dict(TINY_HEAD, in_channels=head_channels),
        **kwargs,
    )
    return ConfigDict(cfg)


def build(cfg: dict) -> torch.nn.Module:
    """Build a model config under the mmaction scope."""
    with library_scope("mmaction"):
        return MODELS.build(ConfigDict(copy.deepcopy(cfg)))


def raw_batch(
    batch_size: int = 2,
    frames: int = 1,
    flow_fields: int = 3,
    size: int = 32,
    with_rgb: bool = True,
    with_flow: bool = True,
) -> dict:
    """A collated batch as ``pseudo_collate`` gives it: lists of per-window tensors."""
    generator = torch.Generator().manual_seed(0)
    inputs = {}
    if with_rgb:
        inputs["rgb"] = [
            torch.randint(0, 256, (frames, 3, size, size), dtype=torch.uint8, generator=generator)
            for _ in range(batch_size)
        ]
    if with_flow:
        inputs["flow"] = [
            torch.rand(flow_fields, 2, size, size, generator=generator) * 2 - 1
            for _ in range(batch_size)
        ]
    samples = [
        ActionDataSample(metainfo=dict(subject_id=f"infant{i}", window_index=0)).set_gt_label(i % 3)
        for i in range(batch_size)
    ]
    return dict(inputs=inputs, data_samples=samples)
