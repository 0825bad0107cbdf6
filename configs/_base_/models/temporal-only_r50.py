# The paper's "only temporal" ablation: ResNet-50 on L=6 stacked flow fields (12 channels), no RGB.
# ImageNet initialisation is opt-in (all but the 12-channel stem):
#   --cfg-options model.flow_backbone.pretrained=torchvision://resnet50
_base_ = ["./multi-stream.py"]

model = dict(
    flow_backbone=dict(type="ResNet", depth=50, in_channels=12, pretrained=None, norm_eval=False),
    flow_input="stack2d",
    fusion=dict(type="PoolFusion", in_channels=dict(flow=2048)),
    # Flow normalisation only: the shared preprocessor's RGB statistics are dropped.
    data_preprocessor=dict(
        _delete_=True,
        type="TwoStreamDataPreprocessor",
        flow_mean=[0.0, 0.0],
        flow_std=[1.0, 1.0],
        flip_prob=0.5,
    ),
)
