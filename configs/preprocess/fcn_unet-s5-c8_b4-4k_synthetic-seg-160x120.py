# The segmentation model of `make demo`: the same UNet as the 12k-iteration config, trained for 4k
# iterations so that the whole demo fits in 15 minutes on 2 CPU cores (lower mask IoU; the model zoo
# table in docs/en/model_zoo.md gives what it reaches).
_base_ = ["./fcn_unet-s5-c8_b4-12k_synthetic-seg-160x120.py"]

max_iters = 4000
# The same warm-up; the cosine decay ends at the new last iteration.
param_scheduler = [_base_.param_scheduler[0], dict(_base_.param_scheduler[1], end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
