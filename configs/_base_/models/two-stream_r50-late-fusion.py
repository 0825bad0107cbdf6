# Two ResNet-50 streams as in the paper, fused late: each stream has its own classifier and the
# class scores are averaged with weights (how two-stream TSN results are usually reported).
# ImageNet initialisation is opt-in:
#   --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50 \
#                 model.flow_backbone.pretrained=torchvision://resnet50
_base_ = ["./multi-stream.py"]

model = dict(
    rgb_backbone=dict(type="ResNet", depth=50, in_channels=3, pretrained=None, norm_eval=False),
    flow_backbone=dict(type="ResNet", depth=50, in_channels=12, pretrained=None, norm_eval=False),
    rgb_input="stack2d",
    flow_input="stack2d",
    fusion=dict(
        type="LateFusion",
        in_channels=dict(rgb=2048, flow=2048),
        num_classes=3,
        weights=dict(rgb=1.0, flow=1.0),
        dropout_ratio=0.5,
    ),
    # The fusion already classifies; the head (replacing the shared one: no fc, no dropout) only
    # computes the loss and predictions.
    cls_head=dict(
        _delete_=True,
        type="FusionClsHead",
        num_classes=3,
        in_channels=3,
        with_fc=False,
        dropout_ratio=0.0,
        average_clips="prob",
    ),
    data_preprocessor=dict(flow_mean=[0.0, 0.0], flow_std=[1.0, 1.0]),
)
