# The paper's "only spatial" ablation: ResNet-50 on the middle RGB frame, no flow stream.
# ImageNet initialisation is opt-in: --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50
_base_ = ["./multi-stream.py"]

model = dict(
    rgb_backbone=dict(type="ResNet", depth=50, in_channels=3, pretrained=None, norm_eval=False),
    rgb_input="stack2d",
    fusion=dict(type="PoolFusion", in_channels=dict(rgb=2048)),
)
