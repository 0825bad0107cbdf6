# The paper's two-stream concat-conv fusion at CPU demo size on the synthetic default dataset.
#
# Why the demo differs from the paper: the paper trains ImageNet-initialised ResNet-50 streams on
# 224 px windows on a GPU. The demo must train in about 5 minutes on 2 CPU cores, so it uses the
# ResNet-18 streams cut after stage 3 on 64 px windows (preprocess with out_size=64 at 6 fps;
# 4x4 maps at the fusion) and no pretrained weights (the demo runs offline).
#
# Without ImageNet weights, a trained RGB stream memorises the appearance of the 24 training
# infants (spatial-only demo: train accuracy 1.0, validation infants below chance), and in the
# fused model it drowns the flow stream, which carries the class signal. So the RGB backbone keeps
# its initial weights (lr_mult=0; its BatchNorm statistics still adapt) and the fusion conv and
# the flow stream learn: the stand-in for the paper's pretrained spatial stream (the schedule
# base adamw_cosine_rgb-frozen-random_demo.py).
_base_ = [
    "../_base_/models/two-stream_r18-3stage-concat-fusion.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_rgb-frozen-random_demo.py",
    "../_base_/default_runtime_demo.py",
]
