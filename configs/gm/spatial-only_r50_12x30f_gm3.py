# The paper's setting, only the spatial stream (Table 1: Only spatial): ResNet-50 streams at 224 px,
# 12 windows of 30 frames per infant, AdamW (lr 1e-5, wd 1e-4, amsgrad), batch 64, early stopping on
# the validation cross-entropy. For GPU users: add --amp to tools/train.py for mixed precision, and
# ImageNet weights with --cfg-options model.rgb_backbone.pretrained=torchvision://resnet50 (see the
# model file). Needs your own data in data/gm3 (docs/en/user_guides/own_data.md).
_base_ = [
    "../_base_/models/spatial-only_r50.py",
    "../_base_/datasets/gm3_cache_paper.py",
    "../_base_/schedules/adamw_amsgrad_early-stopping.py",
    "../_base_/default_runtime.py",
]

# One stream: load only its RGB; the packer packs what was loaded.
load = dict(_base_.load, streams=("rgb",))
train_pipeline = test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
