# Baseline C3D at full size for GPU users, on your own data in data/gm3
# (docs/en/user_guides/own_data.md), evaluated like the paper's two-stream model
# (two-stream_r50-concat-fusion_12x30f_gm3.py): 224 px, 12
# windows of 30 frames per infant, AdamW (lr 1e-5, wd 1e-4, amsgrad), batch 64, early stopping on
# the validation cross-entropy. The clip is all T=7 cached frames of a window (1 s at 6 fps,
# every 5th frame of 30 fps); C3D's widths (base_channels=64), trained from scratch with
# BatchNorm (see the model file). Add --amp to tools/train.py for mixed precision; if 64 clips
# of 7x224x224 do not fit on your GPU, lower train_dataloader.batch_size and pass --auto-scale-lr.
_base_ = [
    "../_base_/models/c3d_base64.py",
    "../_base_/datasets/gm3_cache_paper_rgb7.py",
    "../_base_/schedules/adamw_amsgrad_early-stopping.py",
    "../_base_/default_runtime.py",
]
