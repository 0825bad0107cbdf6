# CPU demo size of the paper's classifier: the same two streams and concat-conv fusion, with
# ResNet-18 cut after its third stage in each stream (see r18-3stage.py: 7x7 maps at 112 px like
# the paper's 224 px ResNet-50, 4x4 at the demo's 64 px); fusion 512 -> 256 channels.
_base_ = ["./two-stream_r50-concat-fusion.py", "./r18-3stage.py"]

model = dict(
    rgb_backbone=_base_.resnet18_3stage,
    flow_backbone=_base_.resnet18_3stage,
    fusion=dict(in_channels=dict(rgb=256, flow=256), out_channels=256),
    cls_head=dict(in_channels=256),
    data_preprocessor=dict(flow_std=_base_.flow_std),
)
