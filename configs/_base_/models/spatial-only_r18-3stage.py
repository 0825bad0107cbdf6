# CPU demo size of the "only spatial" ablation: ResNet-18 cut after its third stage (256 channels).
_base_ = ["./spatial-only_r50.py", "./r18-3stage.py"]

model = dict(
    rgb_backbone=_base_.resnet18_3stage,
    fusion=dict(in_channels=dict(rgb=256)),
    cls_head=dict(in_channels=256),
)
