# The benchmark's RGB stream: mmpose's ResNet-18 at half width (32 stem and base channels) cut
# after stage 3 (128 channels, 4x4 maps at 64 px), the backbone of the pose model of the
# evaluation-grade chain, so that it can start from that model's weights: in-domain pretraining on
# 900 + 180 synthetic infants, in place of ImageNet. Four ways to train it (variants):
#   scratch: random initial weights, trained;   frozen-random: random, kept (lr_mult=0);
#   pose-pretrained: the pose model's backbone, fine-tuned at 0.1x the learning rate;
#   pose-pretrained-frozen: the pose model's backbone, kept.
# Frozen streams still adapt their BatchNorm statistics.
rgb_backbone = dict(
    _delete_=True,
    type="mmpose.ResNet",
    depth=18,
    stem_channels=32,
    base_channels=32,
    num_stages=3,
    out_indices=(2,),
    strides=(1, 2, 2),
    dilations=(1, 1, 1),
    norm_eval=False,
)
rgb_channels = 128
pose_checkpoint = (
    "zoo/preprocess/td-hm_res18-c32_dark-b16-20e-ft60e_synthetic-pose-192x192-1695588f.pth"
)
rgb_pose_init = dict(type="Pretrained", checkpoint=pose_checkpoint, prefix="backbone.")
rgb_frozen = dict(
    paramwise_cfg=dict(custom_keys={"rgb_backbone": dict(lr_mult=0.0, decay_mult=0.0)})
)
rgb_fine_tune = dict(paramwise_cfg=dict(custom_keys={"rgb_backbone": dict(lr_mult=0.1)}))
