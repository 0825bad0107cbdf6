# CPU demo size of the "only temporal" ablation: ResNet-18 cut after its third stage (256 channels)
# on L=6 stacked flow fields (12 channels), flow normalised as in r18-3stage.py.
_base_ = ["./temporal-only_r50.py", "./r18-3stage.py"]

model = dict(
    flow_backbone=_base_.resnet18_3stage,
    fusion=dict(in_channels=dict(flow=256)),
    cls_head=dict(in_channels=256),
    data_preprocessor=dict(flow_std=_base_.flow_std),
)
