# The skeleton baseline (ST-GCN, MMAction2) at full size for GPU users, on your own data in
# data/gm3 (docs/en/user_guides/own_data.md), evaluated like the paper's two-stream model
# (configs/gm/two-stream_r50-concat-fusion_12x30f_gm3.py): same subject folds, SubjectMetric at
# window and infant level, batch 64, AdamW (amsgrad, wd 1e-4) with early stopping on the
# validation cross-entropy.
#
# Cache: pose on every cached frame, preprocessed with
# configs/preprocess/preprocess_any-seg_any-pose_farneback-k5-s3.75-224_skeleton-gm3.py into
# data/gm3/cache_skeleton (the paper's k30 cache has a skeleton only every 6th cached frame, which
# LoadCachedKeypoints rejects).
#
# Windows: the paper's 12 window starts (every 5 s, i.e. 150 frames at 30 fps), each widened from
# 1 s to 5 s (150 frames at 30 fps; 30 steps at 6 fps, T = 31 skeletons): ST-GCN needs seconds of
# movement and the 12 windows now tile the first 60 s of each video (an infant needs 361 sampled
# frames, just over 60 s, for all 12; shorter videos get fewer). Window i starts where the
# two-stream model's window i does, so per-window results compare one to one. Standard ST-GCN
# width (10 stages, 64-128-256 channels) on joints + joint motion (6 channels), as in the demo
# (stgcn_c16-s6_joint-motion_5s-windows_demo_gm-synthetic.py).
#
# Learning rate: 1e-3 instead of the paper's 1e-5, because ST-GCN trains from scratch (no
# pretrained weights to fine-tune); early stopping as in the paper.
_base_ = [
    "../_base_/models/stgcn_coco.py",
    "../_base_/datasets/gm3_cache_paper.py",
    "../_base_/schedules/adamw_amsgrad_early-stopping.py",
    "../_base_/default_runtime.py",
]

model = dict(backbone=dict(in_channels=6))

cache_root = "data/gm3/cache_skeleton"
window = dict(start_stride=5.0, span=5.0, num_windows=12, unit="seconds")

# subject_id and window_index reach SubjectMetric through PackActionInputs' meta_keys.
meta_keys = ("subject_id", "window_index", "window_start", "img_shape")
features = [
    dict(type="GenSkeFeat", dataset="coco", feats=["j", "jm"]),  # (x, y, score) + motion
    dict(type="FormatGCNInput", num_person=1),  # (1 clip, 1 person, T, 17, 6)
    dict(type="PackActionInputs", meta_keys=meta_keys),
]
train_pipeline = [dict(type="LoadCachedKeypoints", rotate=10.0, scale=0.1, flip_ratio=0.5)]
train_pipeline += features
test_pipeline = [dict(type="LoadCachedKeypoints"), *features]

_dataset = dict(cache_root=cache_root, window=window)
train_dataloader = dict(dataset=dict(_dataset, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(_dataset, pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(_dataset, pipeline=test_pipeline))

optim_wrapper = dict(optimizer=dict(lr=1e-3))
