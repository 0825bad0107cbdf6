# The demo two-stream model with MMAction2's MobileNetV2 in both streams. MobileNetV2 takes no
# in_channels argument: the flow stream's first convolution is replaced by a 12-channel one
# (L=6 flow fields), its filters the mean of the RGB filters (cross-modality averaging).
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(
    rgb_backbone=dict(_delete_=True, type="MobileNetV2", pretrained=None),
    flow_backbone=dict(_delete_=True, type="MobileNetV2", pretrained=None),
)
