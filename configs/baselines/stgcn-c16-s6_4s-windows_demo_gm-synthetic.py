# The skeleton baseline of the benchmark at CPU demo size: ST-GCN (MMAction2) on the COCO-17
# keypoints that the preprocessing pose step estimated on every cached frame, with the same
# infants, folds and SubjectMetric (window and infant level) as the two-stream demo.
#
# Data: the synthetic default dataset preprocessed with
# configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k5-s3.75-64_skeleton_demo.py
# (PoseAlignment keyframe_interval = DecodeFrames frame_step = 5) into cache_demo_skeleton:
# 120 cached frames (6 per second) per 20 s video, each with a skeleton in aligned pixels.
#
# Windows: a 1 s window is 7 skeletons, too short for ST-GCN's 9-frame temporal kernels and for
# movement patterns that unfold over seconds, so windows span 4 s (24 steps, T = 25 skeletons).
# Test/val windows start every 3 s: 6 windows at 0, 3, ..., 15 s cover 0-19 s of each 20 s video,
# the same part as the two-stream demo's 19 one-second windows (a 4 s window cannot start after
# 15.97 s, so a 4 s stride would lose the last window and 3 s of video). Training windows start
# every 0.5 s (31 per infant, heavily overlapping) with light augmentation (mirror, +-10 deg,
# +-10 % scale) of the already aligned skeletons.
#
# Measured on one CPU thread (OMP_NUM_THREADS=1 tools/train.py): see the report in the README of
# the benchmark or run it yourself; about 6 s per epoch, 15 epochs.
_base_ = [
    "../_base_/models/stgcn-c16-s6_coco.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime.py",
]

cache_root = "data/gm_synthetic/cache_demo_skeleton"
train_window = dict(start_stride=0.5, span=4.0, num_windows=None, frame_step=5, unit="seconds")
test_window = dict(start_stride=3.0, span=4.0, num_windows=None, frame_step=5, unit="seconds")

# subject_id and window_index reach SubjectMetric through PackActionInputs' meta_keys.
meta_keys = ("subject_id", "window_index", "window_start", "img_shape")
train_pipeline = [
    dict(type="LoadCachedKeypoints", rotate=10.0, scale=0.1, flip_ratio=0.5),
    dict(type="GenSkeFeat", dataset="coco", feats=["j"]),  # (x, y, score)
    dict(type="FormatGCNInput", num_person=1),
    dict(type="PackActionInputs", meta_keys=meta_keys),
]
test_pipeline = [
    dict(type="LoadCachedKeypoints"),
    dict(type="GenSkeFeat", dataset="coco", feats=["j"]),
    dict(type="FormatGCNInput", num_person=1),
    dict(type="PackActionInputs", meta_keys=meta_keys),
]

train_dataloader = dict(
    dataset=dict(cache_root=cache_root, window=train_window, pipeline=train_pipeline)
)
val_dataloader = dict(
    dataset=dict(cache_root=cache_root, window=test_window, pipeline=test_pipeline)
)
test_dataloader = dict(
    dataset=dict(cache_root=cache_root, window=test_window, pipeline=test_pipeline)
)

max_epochs = 15
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True
    ),
    dict(
        type="CosineAnnealingLR",
        by_epoch=True,
        begin=1,
        end=max_epochs,
        eta_min_ratio=0.01,
        convert_to_iter_based=True,
    ),
]

env_cfg = dict(dist_cfg=dict(backend="gloo"))
default_hooks = dict(logger=dict(interval=10))
