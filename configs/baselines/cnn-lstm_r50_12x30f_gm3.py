# Baseline CNN + LSTM at full size for GPU users, on your own data in data/gm3
# (docs/en/user_guides/own_data.md), evaluated like the paper's two-stream model
# (two-stream_r50-concat-fusion_12x30f_gm3.py):
# ResNet-50 at 224 px, 12 windows of 30 frames per infant, AdamW (lr 1e-5, wd 1e-4, amsgrad), batch
# 64, early stopping on the validation cross-entropy. The LSTM (512 hidden units) reads all T=7
# cached frames of a window (1 s at 6 fps) in time order. Add --amp to tools/train.py for
# mixed precision and ImageNet weights with --cfg-options
# model.rgb_backbone.pretrained=torchvision://resnet50 (see the model file). 64 windows are 448
# frames per batch: on a smaller GPU lower train_dataloader.batch_size and pass --auto-scale-lr.
_base_ = [
    "../_base_/models/cnn-lstm_r50.py",
    "../_base_/datasets/gm3_cache_paper_rgb7.py",
    "../_base_/schedules/adamw_amsgrad_early-stopping.py",
    "../_base_/default_runtime.py",
]
