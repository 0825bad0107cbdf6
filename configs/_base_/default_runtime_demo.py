# Runtime of the CPU demo configs: the default runtime with the gloo backend (the demo machine has
# no GPU, so no NCCL) and a log line every 10 iterations (a demo epoch has about 57).
_base_ = ["./default_runtime.py"]

env_cfg = dict(dist_cfg=dict(backend="gloo"))
default_hooks = dict(logger=dict(interval=10))
