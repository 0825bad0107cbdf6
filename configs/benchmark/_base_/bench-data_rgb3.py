# The benchmark's data for the per-frame RGB baselines (TSN, CNN + LSTM): T=3 consecutive cached
# frames of the RGB stream per window, shifted by up to 2 frames in training (as the demo's).
_base_ = ["./bench-data.py"]

load = dict(_base_.load, rgb_frames=3, streams=("rgb",))
train_pipeline = [dict(load, jitter=2), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
