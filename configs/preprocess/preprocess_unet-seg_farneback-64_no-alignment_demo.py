# Ablation "without body alignment" of the demo chain: background removal as in the demo, then the
# whole frame is fitted into the same 64x64 square (LetterboxFrames) instead of the pose-based
# crop, so the infant keeps the camera's position, scale and rotation.
_base_ = ["./preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"]

preprocess_pipeline = [
    dict(type="DecodeFrames", target_fps=6.0),
    dict(type="BackgroundRemoval", config={{_base_.seg_config}},
         checkpoint={{_base_.seg_checkpoint}}, mask_mode="soft", batch_size=32),
    dict(type="LetterboxFrames", out_size=64),
    # The same bound in pixels as the demo chain; the infant is smaller in the letterboxed frame,
    # so its flow uses less of the range.
    dict(type="OpticalFlow", algorithm="farneback", bound=20.0 * 64 / 224),
]  # fmt: skip
