# The paper's "only spatial" ablation: ResNet-50 on the middle RGB frame, no flow stream.
# ImageNet initialisation is opt-in: --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50
model = dict(
    type="MultiStreamRecognizer",
    rgb_backbone=dict(type="ResNet", depth=50, in_channels=3, pretrained=None, norm_eval=False),
    rgb_input="stack2d",
    fusion=dict(type="PoolFusion", in_channels=dict(rgb=2048)),
    cls_head=dict(
        type="FusionClsHead",
        num_classes=3,
        in_channels=2048,
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips="prob",
    ),
    data_preprocessor=dict(
        type="TwoStreamDataPreprocessor",
        rgb_mean=[123.675, 116.28, 103.53],
        rgb_std=[58.395, 57.12, 57.375],
        flip_prob=0.5,
    ),
)
