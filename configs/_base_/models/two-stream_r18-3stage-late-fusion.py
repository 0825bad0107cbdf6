# CPU demo size of the late-fusion variant: ResNet-18 cut after its third stage in each stream.
_base_ = ["./two-stream_r50-late-fusion.py", "./r18-3stage.py"]

model = dict(
    rgb_backbone=_base_.resnet18_3stage,
    flow_backbone=_base_.resnet18_3stage,
    fusion=dict(in_channels=dict(rgb=256, flow=256)),
    data_preprocessor=dict(flow_std=_base_.flow_std),
)
