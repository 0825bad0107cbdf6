# Baseline TSN (RGB) on the benchmark: 3 frames per window through the RGB stream, averaged.
_base_ = [
    "../../_base_/models/tsn-rgb_r50.py",
    "./rgb-r18c32.py",
]

model = dict(
    rgb_backbone=_base_.rgb_backbone,
    fusion=dict(in_channels=dict(rgb=_base_.rgb_channels)),
    cls_head=dict(in_channels=_base_.rgb_channels),
)
