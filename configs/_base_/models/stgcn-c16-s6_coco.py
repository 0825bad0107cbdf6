# CPU demo size of the ST-GCN skeleton baseline (stgcn_coco.py): 6 stages instead of 10 and a
# quarter of the width (16 -> 32 -> 64 channels, time halved at stages 3 and 5), about 130k
# parameters, so one fold trains on one CPU thread in about a minute.
_base_ = ["./stgcn_coco.py"]

model = dict(
    backbone=dict(base_channels=16, num_stages=6, inflate_stages=[3, 5], down_stages=[3, 5]),
    cls_head=dict(in_channels=64),
)
