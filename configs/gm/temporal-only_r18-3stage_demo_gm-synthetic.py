# The paper's "only temporal" ablation at the demo size of
# two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py (64 px, ResNet-18 cut after stage 3,
# trained from scratch on CPU; see there why the demo differs from the paper): flow stream alone.
_base_ = [
    "../_base_/models/temporal-only_r18-3stage.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime.py",
]

# Flow is cached in [-1, 1] (1 = 20 px at 224 px); its std on the body is about 0.2.
model = dict(data_preprocessor=dict(flow_std=[0.2, 0.2]))

flow_only = dict(type="PackTwoStreamInputs", streams=("flow",))
train_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), flow_only]))
val_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), flow_only]))
test_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), flow_only]))

env_cfg = dict(dist_cfg=dict(backend="gloo"))
default_hooks = dict(logger=dict(interval=10))
