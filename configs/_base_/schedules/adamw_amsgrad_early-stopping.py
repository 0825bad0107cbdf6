# The paper's optimisation: AdamW (lr 1e-5, wd 1e-4, amsgrad), batch 64, up to 500 epochs with
# early stopping (patience 10) on the validation loss.
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=500, val_begin=1, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=1e-5, betas=(0.9, 0.999), weight_decay=1e-4, amsgrad=True),
)
param_scheduler = []

custom_hooks = [
    dict(type="EarlyStoppingHook", monitor="window/cross_entropy", rule="less", patience=10)
]

# The paper's batch size; `tools/train.py --auto-scale-lr` rescales lr for other sizes.
auto_scale_lr = dict(enable=False, base_batch_size=64)
