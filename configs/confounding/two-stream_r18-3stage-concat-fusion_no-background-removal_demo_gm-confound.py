# The confounding experiment (see two-stream_r18-3stage-concat-fusion_demo_gm-confound.py) with the
# cache of configs/preprocess/
#   preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_no-background-removal_demo.py
# (alignment only).
_base_ = ["./two-stream_r18-3stage-concat-fusion_demo_gm-confound.py"]

cache_name = "cache_demo_no-bg"
train_dataloader = dict(dataset=dict(cache_root=f"data/gm_confound/{cache_name}"))
val_dataloader = dict(dataset=dict(cache_root=f"data/gm_confound/{cache_name}"))
test_dataloader = dict(dataset=dict(cache_root=f"data/gm_synthetic/{cache_name}"))
