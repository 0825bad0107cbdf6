# CPU demo size of the C3D baseline: a quarter of the widths (16, 32, 64x2, 128x4 channels), so
# that a 6-frame 64 px clip trains about as fast as the two-stream demo model; 128x1x4x4 maps.
_base_ = ["./c3d_base64.py"]

model = dict(
    rgb_backbone=dict(base_channels=16),
    fusion=dict(in_channels=dict(rgb=128)),
    cls_head=dict(in_channels=128),
)
