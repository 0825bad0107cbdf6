# CPU demo size of the late-fusion variant: ResNet-18 cut after its third stage in each stream.
_base_ = ["./two-stream_r50-late-fusion.py"]

model = dict(
    rgb_backbone=dict(
        depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
    ),
    flow_backbone=dict(
        depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
    ),
    fusion=dict(in_channels=dict(rgb=256, flow=256)),
)
