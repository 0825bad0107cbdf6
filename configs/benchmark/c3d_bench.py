# Baseline C3D (quarter width) on the benchmark: 6 consecutive cached frames (1 s) per window,
# trained from scratch.
_base_ = [
    "../_base_/models/c3d_base16.py",
    "./_base_/bench-data.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "./_base_/default_runtime_bench.py",
]

load = dict(_base_.load, rgb_frames=6, streams=("rgb",))
train_pipeline = [dict(load, jitter=1), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
