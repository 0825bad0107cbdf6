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
_base_ = ["../_base_/preprocess/default_chain.py"]

seg_config = "path/to/your_mmseg_config_320x320.py"
seg_checkpoint = "path/to/your_mmseg_checkpoint.pth"
seg_infant_class = 1  # index of the person/infant class in the segmentation output
pose_config = "path/to/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"
pose_checkpoint = "path/to/hrnet_w32_coco_256x192-c78dce93_20200708.pth"
device = "cuda:0"

background_removal = dict(
    _base_.background_removal,
    config=seg_config,
    checkpoint=seg_checkpoint,
    device=device,
    infant_class=seg_infant_class,
)
alignment = dict(_base_.alignment, config=pose_config, checkpoint=pose_checkpoint, device=device)
# Farneback's parameters written out, to be tuned for your cameras.
flow = dict(_base_.flow, pyr_scale=0.5, levels=3, winsize=5, iterations=3, poly_n=7, poly_sigma=1.5)
preprocess_pipeline = [_base_.decode, background_removal, alignment, flow]
