"""Tiny configs for one model of each OpenMMLab library, small enough for CPU tests."""

from __future__ import annotations

TINY_TSN = dict(
    type="Recognizer2D",
    backbone=dict(type="ResNet", depth=18, pretrained=None, norm_eval=False),
    cls_head=dict(
        type="TSNHead",
        num_classes=3,
        in_channels=512,
        spatial_type="avg",
        consensus=dict(type="AvgConsensus", dim=1),
        dropout_ratio=0.0,
        average_clips="prob",
    ),
    data_preprocessor=dict(
        type="ActionDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape="NCHW",
    ),
)

TINY_UNET = dict(
    type="mmseg.EncoderDecoder",
    data_preprocessor=dict(
        type="mmseg.SegDataPreProcessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(64, 64),
    ),
    backbone=dict(
        type="mmseg.UNet",
        in_channels=3,
        base_channels=8,
        num_stages=3,
        strides=(1, 1, 1),
        enc_num_convs=(1, 1, 1),
        dec_num_convs=(1, 1),
        downsamples=(True, True),
        enc_dilations=(1, 1, 1),
        dec_dilations=(1, 1),
        norm_cfg=dict(type="BN", requires_grad=True),
    ),
    decode_head=dict(
        type="mmseg.FCNHead",
        in_channels=8,
        in_index=2,
        channels=8,
        num_convs=1,
        concat_input=False,
        num_classes=2,
        norm_cfg=dict(type="BN", requires_grad=True),
        loss_decode=dict(type="mmseg.CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)

TINY_POSE = dict(
    type="mmpose.TopdownPoseEstimator",
    data_preprocessor=dict(
        type="mmpose.PoseDataPreprocessor",
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
    ),
    backbone=dict(type="mmpose.ResNet", depth=18),
    head=dict(
        type="mmpose.HeatmapHead",
        in_channels=512,
        out_channels=17,
        deconv_out_channels=(32, 32, 32),
        deconv_kernel_sizes=(4, 4, 4),
        loss=dict(type="mmpose.KeypointMSELoss", use_target_weight=True),
        decoder=dict(
            type="mmpose.MSRAHeatmap", input_size=(64, 64), heatmap_size=(16, 16), sigma=2
        ),
    ),
    test_cfg=dict(flip_test=False),
)
