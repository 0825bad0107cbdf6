# Baseline CNN + LSTM on the benchmark: 3 frames per window through the RGB stream, then an LSTM
# with 128 hidden units.
_base_ = [
    "../../_base_/models/cnn-lstm_r50.py",
    "./rgb-r18c32.py",
]

model = dict(
    rgb_backbone=_base_.rgb_backbone,
    fusion=dict(in_channels=dict(rgb=_base_.rgb_channels), hidden_channels=128),
    cls_head=dict(in_channels=128),
)
