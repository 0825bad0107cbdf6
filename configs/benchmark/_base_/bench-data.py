# The benchmark's data (tools/run_benchmark.py table1 makes it): three sets of other synthetic
# infants, split by infant once and for all: data/gm_bench/train (120 infants) trains,
# data/gm_bench/val (60) picks checkpoints and settings, data/gm_bench/test (300) is only tested.
# 10 s clips at 30 fps, environment independent of class; preprocessed by the evaluation-grade
# chain at 64 px. Windows of 1 s (6 flow fields at 6 fps); training windows start every second.
# Validation and test keep videos whose preprocessing fell back, so every method is scored on
# the same infants.
_base_ = ["../../_base_/datasets/gm-synthetic_cache_demo.py"]

bench_root = "data/gm_bench"
cache_name = "cache_eval64"
preprocess_config = (
    "configs/preprocess/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-64_benchmark.py"
)
train_root, val_root, test_root = f"{bench_root}/train", f"{bench_root}/val", f"{bench_root}/test"
train_window = dict(start_stride=1.0)

train_dataloader = dict(
    dataset=dict(
        data_root=train_root,
        cache_root=f"{train_root}/{cache_name}",
        split="all",
        window=train_window,
    )
)
val_dataloader = dict(
    dataset=dict(
        data_root=val_root,
        cache_root=f"{val_root}/{cache_name}",
        split="all",
        exclude_fallbacks=False,
    )
)
test_dataloader = dict(
    dataset=dict(
        data_root=test_root,
        cache_root=f"{test_root}/{cache_name}",
        split="all",
        exclude_fallbacks=False,
    )
)
