# The paper's two-stream concat-conv fusion on the benchmark: the RGB stream of rgb-r18c32.py,
# the demo's flow stream (ResNet-18 cut after stage 3, 12 input channels), channels inferred.
_base_ = ["../../_base_/models/two-stream_r18-3stage-concat-fusion.py", "./rgb-r18c32.py"]

model = dict(rgb_backbone=_base_.rgb_backbone)
