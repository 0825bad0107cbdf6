# The paper's "only spatial" ablation on the benchmark (one RGB frame per window:
# bench-data_rgb1.py).
_base_ = ["../../_base_/models/spatial-only_r50.py", "./rgb-r18c32.py"]

model = dict(
    rgb_backbone=_base_.rgb_backbone,
    fusion=dict(in_channels=dict(rgb=_base_.rgb_channels)),
    cls_head=dict(in_channels=_base_.rgb_channels),
)
