# Ablation "without background removal" of the demo chain: the segmentation model still finds
# the infant (its box guides the pose model, as in the full chain) but the frames keep their
# background; alignment and flow are unchanged, so only the background differs from the demo cache.
_base_ = ["./preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"]

preprocess_pipeline = [
    dict(type="DecodeFrames", target_fps=6.0),
    dict(type="BackgroundRemoval", config={{_base_.seg_config}},
         checkpoint={{_base_.seg_checkpoint}}, mask_mode="none", batch_size=32),
    dict(type="PoseAlignment", config={{_base_.pose_config}},
         checkpoint={{_base_.pose_checkpoint}}, keyframe_interval=30, mode="video", scale=3.75,
         out_size=64, min_keypoint_score=0.3, batch_size=32),
    dict(type="OpticalFlow", algorithm="farneback", bound=20.0 * 64 / 224),
]  # fmt: skip
