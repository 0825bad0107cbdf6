# Infant / background segmentation for BackgroundRemoval: a small UNet trained from scratch on the
# synthetic dataset's mmseg/ folder (tools/make_synthetic_dataset.py --out data/gm_synthetic).
#   python tools/train.py configs/preprocess/fcn_unet-s5-c8_b4-12k_synthetic-seg-160x120.py
# Frames are resized to 160x120 (the demo videos are 320x240); predictions are resized back.
default_scope = "mmseg"
data_root = "data/gm_synthetic/mmseg/"
input_scale = (160, 120)  # (w, h) for mmseg's Resize

norm_cfg = dict(type="BN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=16,  # four 2x downsamplings
    test_cfg=dict(size_divisor=16),  # mmseg pads test batches only when asked
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type="UNet",
        in_channels=3,
        base_channels=8,
        num_stages=5,
        strides=(1, 1, 1, 1, 1),
        enc_num_convs=(1, 1, 1, 1, 1),
        dec_num_convs=(1, 1, 1, 1),
        downsamples=(True, True, True, True),
        enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1),
        norm_cfg=norm_cfg,
        act_cfg=dict(type="ReLU"),
        upsample_cfg=dict(type="InterpConv"),
    ),
    decode_head=dict(
        type="FCNHead",
        in_channels=8,
        in_index=4,
        channels=8,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=[
            dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
            dict(type="DiceLoss", loss_weight=1.0),  # counters the small share of infant pixels
        ],
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
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

# Schedule: 12k iterations of 4 images, about 25 minutes on one CPU core.
max_iters = 12000
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=3e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=4000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(
        type="CheckpointHook", by_epoch=False, interval=4000, max_keep_ckpts=1, save_last=True
    ),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="SegVisualizationHook"),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="gloo"),
)
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="SegLocalVisualizer", vis_backends=vis_backends, name="visualizer")
log_processor = dict(by_epoch=False)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0)
