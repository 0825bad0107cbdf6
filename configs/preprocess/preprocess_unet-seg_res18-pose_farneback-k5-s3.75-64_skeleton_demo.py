# The demo chain with pose estimated on every cached frame (keyframe_interval 5 source frames =
# the spacing of 6 fps samples at 30 fps), so the cache holds a skeleton per frame (keypoints.npy,
# aligned coordinates) for the skeleton baseline (configs/baselines/stgcn_*). Alignment aggregates
# the 6x more estimates. (The chain has no presence gate.)
_base_ = ["./preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py"]

alignment = dict(_base_.alignment, keyframe_interval=5)
preprocess_pipeline = [_base_.decode, _base_.background_removal, alignment, _base_.flow]
