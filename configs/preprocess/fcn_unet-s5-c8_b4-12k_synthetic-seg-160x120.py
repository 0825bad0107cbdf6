# Infant / background segmentation for BackgroundRemoval: a small UNet trained from scratch on the
# synthetic dataset's mmseg/ folder (tools/data/make_synthetic_dataset.py --out data/gm_synthetic).
#   python tools/train.py configs/preprocess/fcn_unet-s5-c8_b4-12k_synthetic-seg-160x120.py
# Frames are resized to 160x120 (the demo videos are 320x240); predictions are resized back.
#
# mmseg's UNet-S5-D16 FCN model, runtime and 20k-iteration schedule (its loops and hooks) are the
# base; below is what differs. The data part is written out: mmseg has no base for a 2-class
# BaseSegDataset of PNG frames and masks (its dataset bases name their own dataset classes).
_base_ = [
    "mmseg::_base_/models/fcn_unet_s5-d16.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]

data_root = "data/gm_synthetic/mmseg/"
input_scale = (160, 120)  # (w, h) for mmseg's Resize

# A small UNet for the CPU: 8 channels at full resolution (mmseg's: 64), one conv per block
# (mmseg's: 2), BatchNorm instead of SyncBN (one process), no auxiliary head, and whole-image
# inference on inputs padded to a multiple of 16.
norm_cfg = dict(type="BN", requires_grad=True)
data_preprocessor = dict(
    size_divisor=16,  # four 2x downsamplings
    test_cfg=dict(size_divisor=16),  # mmseg pads test batches only when asked
)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        base_channels=8,
        enc_num_convs=(1, 1, 1, 1, 1),
        dec_num_convs=(1, 1, 1, 1),
        norm_cfg=norm_cfg,
    ),
    decode_head=dict(
        in_channels=8,
        channels=8,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        loss_decode=[
            dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
            dict(type="DiceLoss", loss_weight=1.0),  # counters the small share of infant pixels
        ],
    ),
    auxiliary_head=None,
    test_cfg=dict(_delete_=True, mode="whole"),
)

# Data: PNG frames (RGB content, loaded as BGR like any mmseg dataset), masks 0/1.
metainfo = dict(classes=("background", "infant"), palette=[[0, 0, 0], [255, 255, 255]])
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=input_scale, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type="RandomCrop", crop_size=(input_scale[1], input_scale[0]), cat_max_ratio=1.0),
    dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    dict(type="RandomFlip", prob=0.5, direction="vertical"),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=input_scale, keep_ratio=True),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]
dataset_type = "BaseSegDataset"
common = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix=".png",
    seg_map_suffix=".png",
    reduce_zero_label=False,
)
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(
        **common,
        data_prefix=dict(img_path="img_dir/train", seg_map_path="ann_dir/train"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        **common,
        data_prefix=dict(img_path="img_dir/val", seg_map_path="ann_dir/val"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU"])
test_evaluator = val_evaluator

# Schedule: 12k iterations of 4 images, about 25 minutes on one CPU core; AdamW with a warm-up
# and cosine decay instead of mmseg's SGD with poly decay.
max_iters = 12000
optimizer = dict(_delete_=True, type="AdamW", lr=3e-3, weight_decay=1e-4)
optim_wrapper = dict(optimizer=dict(optimizer))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000, max_keep_ckpts=1, save_last=True))

env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
randomness = dict(seed=0)
