# Baseline C3D (Tran et al., ICCV 2015): eight 3x3x3 convolutions in five blocks (64, 128, 256x2,
# 512x2, 512x2 channels), pools 1x2x2 then 2x2x2, on a clip of T RGB frames (rgb_input='clip3d').
# The paper's fc6-fc8 (sized for 16x112x112 clips) are replaced by the project's fusion slot:
# global average pooling of the last conv map (PoolFusion) and FusionClsHead, as in the
# two-stream model. BatchNorm after each conv (not in the paper) because there are no weights to
# start from here (the Sports-1M C3D weights have other layer names); it trains from scratch.
# At 224 px and T=7 the feature map is 512x1x14x14.
_base_ = ["./multi-stream.py"]

model = dict(
    rgb_backbone=dict(
        type="C3DFeatures", in_channels=3, base_channels=64, norm_cfg=dict(type="BN3d")
    ),
    rgb_input="clip3d",
    fusion=dict(type="PoolFusion", in_channels=dict(rgb=512)),
    cls_head=dict(in_channels=512),
)
