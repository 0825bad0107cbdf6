# The demo two-stream model with MMAction2's MobileNetV2 as the RGB stream. Its 1280-channel maps
# are 2x2 at 64 px (total stride 32) while the ResNet-18 (3 stages) flow stream gives 256-channel
# 4x4 maps: the fusion's channels are inferred and ConcatConvFusion average-pools the flow maps to
# 2x2 (spatial_align='pool'). As in the demo, the RGB stream keeps its initial weights.
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(rgb_backbone=dict(_delete_=True, type="MobileNetV2", pretrained=None))
