# Two-stream late fusion (per-stream classifiers, weighted average) on the benchmark.
_base_ = [
    "../../_base_/models/two-stream_r18-3stage-late-fusion.py",
    "./rgb-r18c32.py",
    "./bench-data.py",
    "../../_base_/schedules/adamw_cosine_demo.py",
]

model = dict(
    rgb_backbone=_base_.rgb_backbone,
    fusion=dict(in_channels=dict(rgb=_base_.rgb_channels, flow=256)),
)
