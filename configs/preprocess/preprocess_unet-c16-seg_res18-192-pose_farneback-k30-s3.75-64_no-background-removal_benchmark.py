# The benchmark's chain without background removal (the confounding experiment): the infant box
# still comes from the segmentation model, the background is kept.
_base_ = ["./preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-64_benchmark.py"]

background_removal = dict(_base_.background_removal, mask_mode="none")
preprocess_pipeline = [_base_.decode, background_removal, _base_.alignment, _base_.flow]
