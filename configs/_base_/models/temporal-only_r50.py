# The paper's "only temporal" ablation: ResNet-50 on L=6 stacked flow fields (12 channels), no RGB.
# ImageNet initialisation is opt-in (all but the 12-channel stem):
#   --cfg-options model.flow_backbone.pretrained=torchvision://resnet50
model = dict(
    type="MultiStreamRecognizer",
    flow_backbone=dict(type="ResNet", depth=50, in_channels=12, pretrained=None, norm_eval=False),
    flow_input="stack2d",
    fusion=dict(type="PoolFusion", in_channels=dict(flow=2048)),
    cls_head=dict(
        type="FusionClsHead",
        num_classes=3,
        in_channels=2048,
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips="prob",
    ),
    data_preprocessor=dict(
        type="TwoStreamDataPreprocessor", flow_mean=[0.0, 0.0], flow_std=[1.0, 1.0], flip_prob=0.5
    ),
)
