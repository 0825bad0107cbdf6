# Ablation "without background removal" of the demo chain: the segmentation model still finds
# the infant (its box guides the pose model, as in the full chain) but the frames keep their
# background; alignment and flow are unchanged, so only the background differs from the demo cache.
# (The chain has no presence gate.)
_base_ = ["./preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"]

background_removal = dict(_base_.background_removal, mask_mode="none")
preprocess_pipeline = [_base_.decode, background_removal, _base_.alignment, _base_.flow]
