# The paper's two-stream concat-conv fusion at CPU demo size on the synthetic default dataset.
_base_ = [
    "../_base_/models/two-stream_r18-3stage-concat-fusion.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime.py",
]

env_cfg = dict(dist_cfg=dict(backend="gloo"))
default_hooks = dict(logger=dict(interval=10))
