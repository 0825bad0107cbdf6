# The paper's setting, only the temporal stream (Table 1: Only temporal): ResNet-50 streams at 224
# px, 12 windows of 30 frames per infant, AdamW (lr 1e-5, wd 1e-4, amsgrad), batch 64, early
# stopping on the validation cross-entropy. For GPU users: add --amp to tools/train.py for mixed
# precision, and ImageNet weights with --cfg-options
# model.rgb_backbone.pretrained=torchvision://resnet50 (see the model file). Needs your own data in
# data/gm3 (see the README).
_base_ = [
    "../_base_/models/temporal-only_r50.py",
    "../_base_/datasets/gm3_cache_paper.py",
    "../_base_/schedules/adamw_amsgrad_early-stopping.py",
    "../_base_/default_runtime.py",
]

# One stream: pack only its modality (redefining the base pipeline does not reach the loaders).
pack = dict(type="PackTwoStreamInputs", streams=("flow",))
train_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), pack]))
val_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), pack]))
test_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), pack]))
