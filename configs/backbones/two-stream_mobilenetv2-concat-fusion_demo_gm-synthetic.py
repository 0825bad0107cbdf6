# The demo two-stream model with MMAction2's MobileNetV2 in both streams. MobileNetV2 takes no
# in_channels argument: the flow stream's first convolution is replaced by a 12-channel one
# (L=6 flow fields), its filters the mean of the RGB filters (cross-modality averaging).
_base_ = [
    "../_base_/models/two-stream_r18-3stage-concat-fusion.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_rgb-frozen-random_demo.py",
    "../_base_/default_runtime_demo.py",
]

model = dict(
    rgb_backbone=dict(_delete_=True, type="MobileNetV2", pretrained=None),
    flow_backbone=dict(_delete_=True, type="MobileNetV2", pretrained=None),
)
