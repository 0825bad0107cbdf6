# two-stream on the benchmark, RGB stream started from the pose model's backbone and fine-tuned.
_base_ = [
    "./_base_/two-stream.py",
    "./_base_/bench-data.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "./_base_/default_runtime_bench.py",
]

model = dict(rgb_backbone=dict(init_cfg=_base_.rgb_pose_init))
optim_wrapper = _base_.rgb_fine_tune
