# Baseline CNN + LSTM (Donahue et al., CVPR 2015, LRCN): a ResNet-50 runs on each of the T RGB
# frames of a window (rgb_input='segments2d'), each frame's 2048x7x7 map is averaged to a vector
# and the vectors go, in time order, through a one-layer LSTM (LSTMFusion, 512 hidden units);
# its last hidden state is classified by FusionClsHead. ImageNet initialisation is opt-in:
#   --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50
_base_ = ["./multi-stream.py"]

model = dict(
    rgb_backbone=dict(type="ResNet", depth=50, in_channels=3, pretrained=None, norm_eval=False),
    rgb_input="segments2d",
    fusion=dict(
        type="LSTMFusion",
        in_channels=dict(rgb=2048),
        hidden_channels=512,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
    ),
    cls_head=dict(in_channels=512),
)
