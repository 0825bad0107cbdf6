# Ablation "two-stream without background removal": the demo two-stream model on the cache of
# configs/preprocess/
#   preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_no-background-removal_demo.py
# (same alignment, background kept). Make the cache with
#   python tools/data/preprocess_videos.py THAT_CONFIG --data-root data/gm_synthetic \
#       --out data/gm_synthetic/cache_demo_no-bg --workers 2
_base_ = ["./two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

cache_root = "data/gm_synthetic/cache_demo_no-bg"
_chain = "preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_no-background-removal_demo.py"
preprocess_config = f"configs/preprocess/{_chain}"
train_dataloader = dict(dataset=dict(cache_root=cache_root))
val_dataloader = dict(dataset=dict(cache_root=cache_root))
test_dataloader = dict(dataset=dict(cache_root=cache_root))
