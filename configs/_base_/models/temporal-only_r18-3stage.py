# CPU demo size of the "only temporal" ablation: ResNet-18 cut after its third stage (256 channels)
# on L=6 stacked flow fields (12 channels).
_base_ = ["./temporal-only_r50.py"]

model = dict(
    flow_backbone=dict(
        depth=18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)
    ),
    fusion=dict(in_channels=dict(flow=256)),
    cls_head=dict(in_channels=256),
)
