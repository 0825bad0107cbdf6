# The paper's preprocessing (preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py; set your
# model paths there) with pose estimated on every cached frame (keyframe_interval 5 source frames =
# the spacing of 6 fps samples at 30 fps) instead of every 30th source frame, so the cache holds a
# skeleton per cached frame (keypoints.npy, aligned 224 px coordinates) for the skeleton baseline
# (configs/baselines/stgcn_joint-motion_12x150f_gm3.py). Write it to its own cache folder, e.g.
#   python tools/data/preprocess_videos.py THIS_CONFIG --data-root data/gm3 \
#       --out data/gm3/cache_skeleton
# Alignment aggregates 6x more estimates, so frames and flow differ slightly from the k30 cache.
_base_ = ["./preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py"]

alignment = dict(_base_.alignment, keyframe_interval=5)
preprocess_pipeline = [_base_.decode, _base_.background_removal, alignment, _base_.flow]
