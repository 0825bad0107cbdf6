# CPU demo size of the TSN (RGB) baseline: ResNet-18 cut after its third stage (256 channels) per
# frame, as in spatial-only_r18-3stage.py.
_base_ = ["./tsn-rgb_r50.py"]

model = dict(
    rgb_backbone=dict(
        depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
    ),
    fusion=dict(in_channels=dict(rgb=256)),
    cls_head=dict(in_channels=256),
)
