# The paper's "only temporal" ablation on the benchmark: the flow stream alone (6 flow fields).
_base_ = [
    "../_base_/models/temporal-only_r18-3stage.py",
    "./_base_/bench-data.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "./_base_/default_runtime_bench.py",
]

load = dict(_base_.load, streams=("flow",))
train_pipeline = test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
