# The demo chain with pose estimated on every cached frame (keyframe_interval 5 source frames =
# the spacing of 6 fps samples at 30 fps),
# so the cache holds a skeleton per frame (keypoints.npy, aligned coordinates) for the skeleton
# baseline (configs/baselines/stgcn_*). Alignment aggregates the 6x more estimates.
_base_ = ["./preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"]

preprocess_pipeline = [
    dict(type="DecodeFrames", target_fps=6.0),
    dict(type="BackgroundRemoval", config={{_base_.seg_config}},
         checkpoint={{_base_.seg_checkpoint}}, mask_mode="soft", batch_size=32),
    dict(type="PoseAlignment", config={{_base_.pose_config}},
         checkpoint={{_base_.pose_checkpoint}}, keyframe_interval=5, mode="video", scale=3.75,
         out_size=64, min_keypoint_score=0.3, batch_size=32),
    dict(type="OpticalFlow", algorithm="farneback", bound=20.0 * 64 / 224),
]  # fmt: skip
