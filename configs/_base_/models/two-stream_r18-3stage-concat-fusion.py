# CPU demo size of the paper's classifier: the same two streams and concat-conv fusion, with
# ResNet-18 cut after its third stage (256 channels, total stride 16) in each stream, so 112 px
# windows give 7x7 maps like the paper's 224 px ResNet-50 (the synthetic demo feeds 64 px, 4x4
# maps); fusion 512 -> 256 channels.
_base_ = ["./two-stream_r50-concat-fusion.py"]

model = dict(
    rgb_backbone=dict(
        depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
    ),
    flow_backbone=dict(
        depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
    ),
    fusion=dict(in_channels=dict(rgb=256, flow=256), out_channels=256),
    cls_head=dict(in_channels=256),
)
