# The paper-settings dataset for the RGB baselines (C3D, TSN, CNN + LSTM): each window gives all
# T=7 cached frames (1 s at 6 fps, every 5th frame of 30 fps) of the RGB stream only. The packer
# packs what was loaded.
_base_ = ["./gm3_cache_paper.py"]

load = dict(_base_.load, rgb_frames=7, streams=("rgb",))
train_pipeline = test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
