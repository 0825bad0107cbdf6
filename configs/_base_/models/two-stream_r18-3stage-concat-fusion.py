# CPU demo size of the paper's classifier: the same two streams and concat-conv fusion, with
# ResNet-18 cut after its third stage in each stream (see r18-3stage.py: 7x7 maps at 112 px like
# the paper's 224 px ResNet-50, 4x4 at the demo's 64 px); fusion 512 -> 256 channels.
#
# No channel count is written here: from the input shapes of one demo window (1 RGB frame and
# L=6 flow fields at 64 px), the recognizer builds the flow ResNet with in_channels=12 and infers
# the fusion's (256 + 256) and the head's (256: half the concatenation, ConcatConvFusion's
# default) at build time, so another backbone is a one-line change (see configs/backbones/).
# The model is the same as with those numbers written out, initial weights included. Written
# out here rather than derived from two-stream_r50-concat-fusion.py, so that a demo experiment
# and a one-line change of it stay within 3 levels of _base_.
_base_ = ["./multi-stream.py", "./r18-3stage.py"]

model = dict(
    rgb_backbone=dict(
        _base_.resnet18_3stage, type="ResNet", in_channels=3, pretrained=None, norm_eval=False
    ),
    flow_backbone=dict(
        _base_.resnet18_3stage, type="ResNet", in_channels=None, pretrained=None, norm_eval=False
    ),
    rgb_input="auto",
    flow_input="auto",
    input_shapes=dict(rgb=(1, 3, 64, 64), flow=(6, 2, 64, 64)),
    fusion=dict(type="ConcatConvFusion", in_channels=None, out_channels=None),
    cls_head=dict(in_channels=None),
    data_preprocessor=dict(flow_mean=[0.0, 0.0], flow_std=_base_.flow_std),
)
