# The paper's classifier: ResNet-50 on the middle RGB frame, ResNet-50 on L=6 stacked flow fields
# (12 channels: x0, y0, ..., x5, y5), 2048x7x7 maps at 224 px concatenated, 1x1 conv 4096 -> 2048,
# global average pooling, dropout and a 3-class classifier. Windows are scored one by one;
# SubjectMetric averages them per infant.
#
# Trains from scratch by default (no download). For ImageNet initialisation, as in the paper:
#   --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50 \
#                 model.flow_backbone.pretrained=torchvision://resnet50
# (the 12-channel stem of the flow stream does not match ImageNet's and stays randomly
# initialised, as in the paper, which replaces that layer).
_base_ = ["./multi-stream.py"]

model = dict(
    rgb_backbone=dict(type="ResNet", depth=50, in_channels=3, pretrained=None, norm_eval=False),
    flow_backbone=dict(type="ResNet", depth=50, in_channels=12, pretrained=None, norm_eval=False),
    rgb_input="stack2d",
    flow_input="stack2d",
    fusion=dict(type="ConcatConvFusion", in_channels=dict(rgb=2048, flow=2048), out_channels=2048),
    data_preprocessor=dict(flow_mean=[0.0, 0.0], flow_std=[1.0, 1.0]),
)
