# Baseline C3D at CPU demo size on the synthetic default dataset, evaluated like the two-stream
# model (same windows, folds and SubjectMetric).
#
# Why the demo differs from full size (c3d_base64_12x30f_gm3.py): it must train one fold in about
# 2 minutes on one CPU thread, so the widths are a quarter of C3D's (base_channels=16: 16 to 128
# channels; base 64 has 16x the multiply-adds) and the clip has T=6 of the window's 7 cached 64 px
# frames (0.83 s at 6 fps), trained from scratch. Like the other RGB streams trained from scratch
# on this data, it can memorise the 24 training infants' appearance: a baseline, not frozen.
#
# One CPU thread (OMP_NUM_THREADS=1 tools/train.py CONFIG): an epoch (57 iterations and
# validation) takes about 1.3x the two-stream demo's (25 s vs 19 s side by side on a
# busy machine), so the 8 epochs take about 2 minutes where the two-stream demo takes 96 s.
_base_ = [
    "../_base_/models/c3d_base16.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime_demo.py",
]

# RGB only: load only its frames (T=6); the packer packs what was loaded.
load = dict(_base_.load, rgb_frames=6, streams=("rgb",))
train_pipeline = [dict(load, jitter=1), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
