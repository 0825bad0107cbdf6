# The pose model of `make demo`: the same narrow ResNet-18 heatmap model as the 20-epoch config,
# trained for 8 epochs so that the whole demo fits in 15 minutes on 2 CPU cores.
_base_ = ["./td-hm_res18-c32_dark-b16-20e_synthetic-pose-128x128.py"]

max_epochs = 8
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type="LinearLR", begin=0, end=100, start_factor=0.1, by_epoch=False),
    dict(type="CosineAnnealingLR", begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-5,
         by_epoch=True),
]  # fmt: skip
default_hooks = dict(checkpoint=dict(interval=max_epochs))
