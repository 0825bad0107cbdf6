# The demo two-stream model with a SlowOnly ResNet3d-18 as the flow stream: a 3D network on
# (2, L=6, 64, 64) flow clips (flow_input='auto' picks 'clip3d'), its stem fitted to 2 channels.
_base_ = ["../gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"]

model = dict(flow_backbone=dict(_delete_=True, type="ResNet3dSlowOnly", depth=18, pretrained=None))
