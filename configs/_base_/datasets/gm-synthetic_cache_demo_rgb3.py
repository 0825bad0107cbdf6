# The demo dataset for the per-frame RGB baselines (TSN, CNN + LSTM): each window gives T=3
# consecutive cached frames (1/3 s at 6 fps) of the RGB stream only; training shifts the 3
# frames by up to 2 cached frames. The packer packs what was loaded.
_base_ = ["./gm-synthetic_cache_demo.py"]

load = dict(_base_.load, rgb_frames=3, streams=("rgb",))
train_pipeline = [dict(load, jitter=2), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
