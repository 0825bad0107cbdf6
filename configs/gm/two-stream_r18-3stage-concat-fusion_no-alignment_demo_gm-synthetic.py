# Ablation "two-stream without body alignment": the demo two-stream model on the cache of
# configs/preprocess/preprocess_unet-seg_farneback-64_no-alignment_demo.py (background removed,
# whole frame letterboxed to 64 px instead of the pose-based crop). Make the cache with
#   python tools/data/preprocess_videos.py THAT_CONFIG --data-root data/gm_synthetic \
#       --out data/gm_synthetic/cache_demo_no-align --workers 2
_base_ = ["./two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

cache_root = "data/gm_synthetic/cache_demo_no-align"
preprocess_config = "configs/preprocess/preprocess_unet-seg_farneback-64_no-alignment_demo.py"
train_dataloader = dict(dataset=dict(cache_root=cache_root))
val_dataloader = dict(dataset=dict(cache_root=cache_root))
test_dataloader = dict(dataset=dict(cache_root=cache_root))
