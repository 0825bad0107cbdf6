# The skeleton baseline of the benchmark at CPU demo size: ST-GCN (MMAction2) on the COCO-17
# keypoints that the preprocessing pose step estimated on every cached frame, with the same
# infants, folds and SubjectMetric (window and infant level) as the two-stream demo.
#
# Data: the synthetic default dataset preprocessed with
# configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_skeleton_demo.py
# (DecodeFrames at 6 fps, PoseAlignment on every sampled frame) into cache_demo_skeleton:
# 120 cached frames (6 per second) per 20 s video, each with a skeleton in aligned pixels.
#
# Windows: a 1 s window holds 7 skeletons, too few for ST-GCN's 9-step temporal kernels and for
# movement patterns that unfold over seconds, so a window spans 5 s (30 steps, T = 31 skeletons).
# Val/test windows start every 3.5 s: 5 windows at 0, 3.5, ..., 14 s cover 0-19 s of each 20 s
# video, the same part as the two-stream demo's nineteen 1 s windows (a 5 s window cannot start
# after 14.97 s; a 5 s stride would give 3 windows covering 0-15 s). Training windows start every
# 0.5 s (30 per infant, overlapping) with light augmentation of the aligned skeletons (mirror,
# +-10 deg, +-10 % scale). Input features: joints (x, y, score) and joint motion (their change to
# the next frame), 6 channels; on this data the motion channels beat joints alone (validation
# windows 0.69-0.85 vs 0.61 accuracy with 4 s windows).
#
# One CPU thread (OMP_NUM_THREADS=1 tools/train.py CONFIG): about 4 s per epoch of 45 iterations,
# about 1 minute for the 15 epochs with validation.
_base_ = [
    "../_base_/models/stgcn-c16-s6_coco.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime_demo.py",
]

model = dict(backbone=dict(in_channels=6))

cache_root = "data/gm_synthetic/cache_demo_skeleton"
train_window = dict(start_stride=0.5, span=5.0, num_windows=None, unit="seconds")
test_window = dict(start_stride=3.5, span=5.0, num_windows=None, unit="seconds")

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

_train = dict(cache_root=cache_root, window=train_window, pipeline=train_pipeline)
_test = dict(cache_root=cache_root, window=test_window, pipeline=test_pipeline)
train_dataloader = dict(dataset=_train)
val_dataloader = dict(dataset=_test)
test_dataloader = dict(dataset=_test)

# The demo schedule (AdamW, lr 1e-3, warm-up + cosine) over 15 epochs instead of 8: an epoch is
# cheap here. Lists are not merged, so the scheduler list is restated: the base's warm-up, and its
# cosine decay ending at the new last epoch.
max_epochs = 15
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [_base_.param_scheduler[0], dict(_base_.param_scheduler[1], end=max_epochs)]
