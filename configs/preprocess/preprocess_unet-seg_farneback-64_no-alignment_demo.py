# Ablation "without body alignment" of the demo chain: background removal as in the demo, then the
# whole frame is fitted into the same 64x64 square (LetterboxFrames) instead of the pose-based
# crop, so the infant keeps the camera's position, scale and rotation. The flow keeps the demo
# chain's bound in pixels; the infant is smaller in the letterboxed frame, so its flow uses less
# of the range. (The chain has no presence gate.)
_base_ = ["./preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"]

letterbox = dict(type="LetterboxFrames", out_size=64)
preprocess_pipeline = [_base_.decode, _base_.background_removal, letterbox, _base_.flow]
