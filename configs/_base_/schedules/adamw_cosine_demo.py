# A short CPU schedule for the synthetic demo: AdamW with a one-epoch warm-up and cosine decay over
# 8 epochs (at 64 px and 0.5 s training stride, 57 iterations of 16 windows per epoch).
max_epochs = 8
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_begin=1, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4, amsgrad=True),
    clip_grad=dict(max_norm=10.0),
)
param_scheduler = [
    dict(
        type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True
    ),
    dict(
        type="CosineAnnealingLR",
        by_epoch=True,
        begin=1,
        end=max_epochs,
        eta_min_ratio=0.01,  # relative, so a group with lr_mult=0 stays at 0
        convert_to_iter_based=True,
    ),
]

auto_scale_lr = dict(enable=False, base_batch_size=16)
