# The benchmark's chain without body alignment (the confounding experiment): background removed
# by the evaluation-grade segmentation model, the whole frame letterboxed to 64 px.
_base_ = ["./preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-64_benchmark.py"]

letterbox = dict(type="LetterboxFrames", out_size=64)
preprocess_pipeline = [_base_.decode, _base_.background_removal, letterbox, _base_.flow]
