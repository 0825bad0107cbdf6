# The paper's preprocessing (preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py; set your
# model paths there) with pose estimated on every cached frame (keyframe_interval 5 source frames =
# the spacing of 6 fps samples at 30 fps) instead of every 30th source frame, so the cache holds a
# skeleton per cached frame (keypoints.npy, aligned 224 px coordinates) for the skeleton baseline
# (configs/baselines/stgcn_joint-motion_12x150f_gm3.py). Write it to its own cache folder, e.g.
#   python tools/preprocess_videos.py THIS_CONFIG --data-root data/gm3 --out data/gm3/cache_skeleton
# Alignment aggregates 6x more estimates, so frames and flow differ slightly from the k30 cache.
_base_ = ["./preprocess_any-seg_any-pose_farneback-k30-s3.75-224_paper.py"]

preprocess_pipeline = [
    dict(type="DecodeFrames", target_fps=6.0),
    dict(type="BackgroundRemoval", config={{_base_.seg_config}},
         checkpoint={{_base_.seg_checkpoint}}, device={{_base_.device}},
         infant_class={{_base_.seg_infant_class}}, mask_mode="soft", batch_size=32),
    dict(type="PoseAlignment", config={{_base_.pose_config}},
         checkpoint={{_base_.pose_checkpoint}}, device={{_base_.device}}, keyframe_interval=5,
         mode="video", scale=3.75, out_size=224, min_keypoint_score=0.3, batch_size=32),
    dict(type="OpticalFlow", algorithm="farneback", bound=20.0, pyr_scale=0.5, levels=3,
         winsize=5, iterations=3, poly_n=7, poly_sigma=1.5),
]  # fmt: skip
