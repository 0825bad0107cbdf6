# two-stream on the benchmark, RGB stream started from the pose model's backbone and fine-tuned.
# The demo-size concat-fusion model (channels inferred) with the RGB stream of
# _base_/rgb-r18c32.py in place of its own.
_base_ = [
    "../_base_/models/two-stream_r18-3stage-concat-fusion.py",
    "./_base_/rgb-r18c32.py",
    "./_base_/bench-data.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "./_base_/default_runtime_bench.py",
]

model = dict(rgb_backbone=dict(_base_.rgb_backbone, init_cfg=_base_.rgb_pose_init))
optim_wrapper = _base_.rgb_fine_tune
