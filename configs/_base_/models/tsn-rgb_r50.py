# Baseline TSN, RGB only (Wang et al., ECCV 2016): a ResNet-50 runs on each of the T RGB frames of
# a window (rgb_input='segments2d'; one frame per segment) and the segment consensus is the
# average over time, here PoolFusion (it averages time and space of the (N, 2048, T, 7, 7) maps),
# followed by FusionClsHead. (Averaging the features before one classifier equals averaging the
# linear class scores, TSN's consensus.) ImageNet initialisation is opt-in:
#   --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50
_base_ = ["./multi-stream.py"]

model = dict(
    rgb_backbone=dict(type="ResNet", depth=50, in_channels=3, pretrained=None, norm_eval=False),
    rgb_input="segments2d",
    fusion=dict(type="PoolFusion", in_channels=dict(rgb=2048)),
)
