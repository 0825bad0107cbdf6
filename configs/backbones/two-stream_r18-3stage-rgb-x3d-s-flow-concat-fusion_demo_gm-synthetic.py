# The demo two-stream model with X3D-S as the flow stream: a 3D network on (2, L=6, 64, 64) flow
# clips (flow_input='auto' picks 'clip3d'), its stem fitted to 2 channels. Its 2x2 maps are
# averaged over time; the RGB stream's 4x4 maps are pooled to 2x2 for the fusion.
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(flow_backbone=dict(_delete_=True, type="X3D", gamma_w=1, gamma_b=2.25, gamma_d=2.2))
