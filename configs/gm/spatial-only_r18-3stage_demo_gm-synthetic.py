# The paper's "only spatial" ablation at the demo size of
# two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py (64 px, ResNet-18 cut after stage 3,
# trained from scratch on CPU; see there why the demo differs from the paper): one RGB frame per
# window. Trained from scratch it memorises the training infants' appearance and does not carry
# over to new infants on the synthetic data.
_base_ = [
    "../_base_/models/spatial-only_r18-3stage.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime.py",
]

rgb_only = dict(type="PackTwoStreamInputs", streams=("rgb",))
train_dataloader = dict(
    dataset=dict(pipeline=[dict(type="LoadCachedWindow", rgb_frames=1, jitter=2), rgb_only])
)
val_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), rgb_only]))
test_dataloader = dict(dataset=dict(pipeline=[dict(type="LoadCachedWindow"), rgb_only]))

env_cfg = dict(dist_cfg=dict(backend="gloo"))
default_hooks = dict(logger=dict(interval=10))
