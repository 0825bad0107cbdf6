# The segmentation model of `make demo`: the same UNet as the 12k-iteration config, trained for 4k
# iterations so that the whole demo fits in 15 minutes on 2 CPU cores (lower mask IoU; see the
# README's results for what it reaches).
_base_ = ["./fcn_unet-s5-c8_b4-12k_synthetic-seg-160x120.py"]

max_iters = 4000
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
