# The demo two-stream model with a TSM ResNet-18 as the flow stream: each of the L=6 flow fields
# is one segment (flow_input='auto' picks 'segments2d' for a backbone with num_segments, which is
# taken from the input shapes), its stem fitted to 2 channels; the segment maps are averaged over
# time before the fusion, which pools the RGB stream's 4x4 maps to their 2x2.
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(flow_backbone=dict(_delete_=True, type="ResNetTSM", depth=18, pretrained2d=False))
