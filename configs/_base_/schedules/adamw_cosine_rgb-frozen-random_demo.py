# The demo schedule with the RGB backbone kept at its random initial weights (lr_mult=0; its
# BatchNorm statistics still adapt): the demo two-stream models' stand-in for the paper's
# pretrained spatial stream (see configs/gm/two-stream_r18-3stage-concat-fusion_demo_*.py).
_base_ = ["./adamw_cosine_demo.py"]

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={"rgb_backbone": dict(lr_mult=0.0, decay_mult=0.0)})
)
