# The paper's "only spatial" ablation at the demo size of
# two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py (64 px, ResNet-18 cut after stage 3,
# trained from scratch on CPU; see there why the demo differs from the paper): one RGB frame per
# window. Trained from scratch it memorises the training infants' appearance and does not carry
# over to new infants on the synthetic data.
_base_ = [
    "../_base_/models/spatial-only_r18-3stage.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime_demo.py",
]

# One stream: load only its RGB; the packer packs what was loaded.
load = dict(_base_.load, streams=("rgb",))
train_pipeline = [dict(load, jitter=2), _base_.pack]
test_pipeline = [load, _base_.pack]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
