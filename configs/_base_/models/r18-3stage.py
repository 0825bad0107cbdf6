# What the CPU-demo-size models (*_r18-3stage*.py) share.
#
# Each stream's backbone: ResNet-18 cut after its third stage (256 channels, total stride 16), so
# 112 px windows give 7x7 maps like the paper's 224 px ResNet-50 (the synthetic demo feeds 64 px:
# 4x4 maps). Usage: model = dict(rgb_backbone=_base_.resnet18_3stage, ...).
resnet18_3stage = dict(
    depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
)
# Flow normalisation of the models that have a flow stream: flow is cached in [-1, 1]
# (1 = 20 px at 224 px) and its std on the body is about 0.2.
flow_std = [0.2, 0.2]
