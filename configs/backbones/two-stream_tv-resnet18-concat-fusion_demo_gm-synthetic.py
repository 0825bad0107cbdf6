# The demo two-stream model with torchvision's ResNet-18 (all four stages, without avgpool and fc)
# in both streams: 512-channel 2x2 maps at 64 px. No weights are downloaded; with internet access,
# add weights="DEFAULT" to a backbone for ImageNet weights (the flow stem is then their mean).
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(
    rgb_backbone=dict(_delete_=True, type="torchvision.resnet18"),
    flow_backbone=dict(_delete_=True, type="torchvision.resnet18"),
)
