# The confounding experiment (see two-stream_r18-3stage-concat-fusion_demo_gm-confound.py) with the
# cache of configs/preprocess/preprocess_unet-seg_farneback-64_no-alignment_demo.py (background
# removal only).
_base_ = ["./two-stream_r18-3stage-concat-fusion_demo_gm-confound.py"]

cache_name = "cache_demo_no-align"
train_dataloader = dict(dataset=dict(cache_root=f"data/gm_confound/{cache_name}"))
val_dataloader = dict(dataset=dict(cache_root=f"data/gm_confound/{cache_name}"))
test_dataloader = dict(dataset=dict(cache_root=f"data/gm_synthetic/{cache_name}"))
