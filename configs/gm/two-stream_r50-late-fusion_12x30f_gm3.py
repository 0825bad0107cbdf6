# The paper's setting, two streams with late (score) fusion: ResNet-50 streams at 224 px, 12 windows
# of 30 frames per infant, AdamW (lr 1e-5, wd 1e-4, amsgrad), batch 64, early stopping on the
# validation cross-entropy. For GPU users: add --amp to tools/train.py for mixed precision, and
# ImageNet weights with --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50 (see the
# model file). Needs your own data in data/gm3 (docs/en/user_guides/own_data.md).
_base_ = [
    "../_base_/models/two-stream_r50-late-fusion.py",
    "../_base_/datasets/gm3_cache_paper.py",
    "../_base_/schedules/adamw_amsgrad_early-stopping.py",
    "../_base_/default_runtime.py",
]
