# Two-stream late fusion (per-stream classifiers, weighted average) on the benchmark: the RGB
# stream of rgb-r18c32.py and the demo's flow stream (ResNet-18 cut after stage 3, flow
# normalised as in r18-3stage.py), on the paper-size late-fusion model.
_base_ = [
    "../../_base_/models/two-stream_r50-late-fusion.py",
    "../../_base_/models/r18-3stage.py",
    "./rgb-r18c32.py",
]

model = dict(
    rgb_backbone=_base_.rgb_backbone,
    flow_backbone=_base_.resnet18_3stage,
    fusion=dict(in_channels=dict(rgb=_base_.rgb_channels, flow=256)),
    data_preprocessor=dict(flow_std=_base_.flow_std),
)
