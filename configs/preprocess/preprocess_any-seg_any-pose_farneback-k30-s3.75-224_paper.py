# The paper's preprocessing (Hashimoto et al., MICCAI 2022) for your own pretrained models:
# segmentation at 320x320, pose every 30 source frames, one similarity per video cropping 3.75
# trunk lengths to 224x224, Farneback flow on frames sampled at 6 fps (every 5th frame of 30 fps,
# the nearest frame to every 1/6 s for other cameras) clipped to +-20 px.
# Point seg_* at any mmseg model whose test pipeline resizes to 320x320 (e.g. derive from an
# mmseg config and set `Resize(scale=(320, 320), keep_ratio=False)` in its test_pipeline; the
# paper used U^2-Net, a saliency model: any person/infant segmentation model serves), and pose_*
# at any mmpose top-down COCO-17 model, e.g. mmpose's
# td-hm_hrnet-w32_8xb64-210e_coco-256x192.py with its model-zoo checkpoint
# (https://download.openmmlab.com/mmpose/top_down/hrnet/hrnet_w32_coco_256x192-c78dce93_20200708.pth).
default_scope = "mmaction"
custom_imports = dict(imports=["gm_plugins"], allow_failed_imports=False)

seg_config = "path/to/your_mmseg_config_320x320.py"
seg_checkpoint = "path/to/your_mmseg_checkpoint.pth"
seg_infant_class = 1  # index of the person/infant class in the segmentation output
pose_config = "path/to/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"
pose_checkpoint = "path/to/hrnet_w32_coco_256x192-c78dce93_20200708.pth"
device = "cuda:0"

preprocess_pipeline = [
    dict(type="DecodeFrames", target_fps=6.0),
    dict(
        type="BackgroundRemoval",
        config=seg_config,
        checkpoint=seg_checkpoint,
        device=device,
        infant_class=seg_infant_class,
        mask_mode="soft",
        batch_size=32,
    ),
    dict(
        type="PoseAlignment",
        config=pose_config,
        checkpoint=pose_checkpoint,
        device=device,
        keyframe_interval=30,
        mode="video",
        scale=3.75,
        out_size=224,
        min_keypoint_score=0.3,
        batch_size=32,
    ),
    dict(
        type="OpticalFlow",
        algorithm="farneback",
        bound=20.0,
        pyr_scale=0.5,
        levels=3,
        winsize=5,
        iterations=3,
        poly_n=7,
        poly_sigma=1.5,
    ),
]
