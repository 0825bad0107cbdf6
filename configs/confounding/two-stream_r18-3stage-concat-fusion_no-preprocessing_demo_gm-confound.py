# The confounding experiment (see two-stream_r18-3stage-concat-fusion_demo_gm-confound.py) with the
# cache of configs/preprocess/preprocess_farneback-64_no-background-removal_no-alignment_demo.py
# (no network: whole frame letterboxed, background kept).
_base_ = ["./two-stream_r18-3stage-concat-fusion_demo_gm-confound.py"]

cache_name = "cache_demo_none"
train_dataloader = dict(dataset=dict(cache_root=f"data/gm_confound/{cache_name}"))
val_dataloader = dict(dataset=dict(cache_root=f"data/gm_confound/{cache_name}"))
test_dataloader = dict(dataset=dict(cache_root=f"data/gm_synthetic/{cache_name}"))
