# The paper's "only spatial" ablation on the benchmark: one RGB frame per window.
_base_ = [
    "../../_base_/models/spatial-only_r50.py",
    "./rgb-r18c32.py",
    "./bench-data.py",
    "../../_base_/schedules/adamw_cosine_demo.py",
]

model = dict(
    rgb_backbone=_base_.rgb_backbone,
    fusion=dict(in_channels=dict(rgb=_base_.rgb_channels)),
    cls_head=dict(in_channels=_base_.rgb_channels),
)
load = dict(_base_.load, streams=("rgb",))
train_pipeline = [dict(load, jitter=2), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
