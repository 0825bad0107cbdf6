# The demo two-stream model with timm's MobileNetV3-Small in both streams (built with
# features_only=True: 576-channel 2x2 maps at 64 px, no classifier). Needs timm
# (requirements/runtime.txt). No weights are downloaded unless a backbone sets pretrained=True.
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(
    rgb_backbone=dict(_delete_=True, type="timm.mobilenetv3_small_100"),
    flow_backbone=dict(_delete_=True, type="timm.mobilenetv3_small_100"),
)
