# Top-down COCO-17 keypoints for PoseAlignment: a narrow ResNet-18 with a heatmap head, trained
# from scratch on the synthetic dataset's mmpose/ folder (person boxes from the masks).
#   python tools/train.py configs/preprocess/td-hm_res18-c32_dark-b16-20e_synthetic-pose-128x128.py
_base_ = ["mmpose::_base_/default_runtime.py"]  # hooks, visualizer, logging, default_scope
custom_imports = dict(imports=["gm_plugins.datasets.pose_training"], allow_failed_imports=False)
data_root = "data/gm_synthetic/mmpose/"
input_size = (128, 128)  # (w, h): infants lie in any orientation, so their boxes are squarish

# DARK: Gaussian targets centred at the exact sub-pixel position and Taylor-refined decoding.
# The trunk angle and length need keypoints to a pixel or two, finer than a 4-pixel heatmap cell.
codec = dict(
    type="MSRAHeatmap",
    input_size=input_size,
    heatmap_size=(32, 32),
    sigma=2,
    unbiased=True,
    blur_kernel_size=11,
)
model = dict(
    type="TopdownPoseEstimator",
    data_preprocessor=dict(
        type="PoseDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
    ),
    backbone=dict(type="ResNet", depth=18, stem_channels=32, base_channels=32),
    head=dict(
        type="HeatmapHead",
        in_channels=256,
        out_channels=17,
        deconv_out_channels=(64, 64, 64),
        deconv_kernel_sizes=(4, 4, 4),
        loss=dict(type="KeypointMSELoss", use_target_weight=True),
        decoder=codec,
    ),
    test_cfg=dict(flip_test=False),
)

dataset_type = "CocoDataset"
data_mode = "topdown"
train_pipeline = [
    dict(type="LoadImage"),
    # PoseAlignment sees background-removed frames: train on such images most of the time.
    dict(type="BlackOutBackground", path_replace=("mmpose/images", "mmseg/ann_dir"), prob=0.7),
    dict(type="GetBBoxCenterScale"),
    # No horizontal flip: a mirrored supine infant has the chirality of a prone one, which
    # never occurs here and blurs left/right hips and shoulders.
    dict(type="RandomBBoxTransform", rotate_factor=180.0, rotate_prob=0.8, scale_factor=(0.8, 1.2)),
    dict(type="TopdownAffine", input_size=input_size),
    dict(type="PhotometricDistortion"),
    dict(type="GenerateTarget", encoder=codec),
    dict(type="PackPoseInputs"),
]
val_pipeline = [
    dict(type="LoadImage"),
    dict(type="GetBBoxCenterScale"),
    dict(type="TopdownAffine", input_size=input_size),
    dict(type="PackPoseInputs"),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file="annotations/train.json",
        data_prefix=dict(img="images/train/"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file="annotations/val.json",
        data_prefix=dict(img="images/val/"),
        test_mode=True,
        pipeline=val_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="PCKAccuracy", thr=0.05, norm_item="bbox")
test_evaluator = val_evaluator

# Schedule: 20 epochs of ~570 images (720 iterations), about 10 minutes on 2 shared CPU cores.
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=20)
optim_wrapper = dict(optimizer=dict(type="AdamW", lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type="LinearLR", begin=0, end=100, start_factor=0.1, by_epoch=False),
    dict(
        type="CosineAnnealingLR",
        begin=0,
        end=max_epochs,
        T_max=max_epochs,
        eta_min=1e-5,
        by_epoch=True,
    ),
]

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=20, max_keep_ckpts=1, save_last=True),
)
# mmpose's runtime syncs BatchNorm buffers across processes every epoch; these models never did.
custom_hooks = []
env_cfg = dict(dist_cfg=dict(backend="gloo"))
randomness = dict(seed=0)
