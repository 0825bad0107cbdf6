# The benchmark's data for the "only spatial" ablation: one frame of the RGB stream per window,
# shifted by up to 2 cached frames in training (as in the demo's spatial-only config).
_base_ = ["./bench-data.py"]

load = dict(_base_.load, streams=("rgb",))
train_pipeline = [dict(load, jitter=2), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
