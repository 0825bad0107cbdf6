# ST-GCN (Yan et al. 2018) from MMAction2 on the COCO-17 keypoints of the pose step: the skeleton
# baseline (the pose-based family of GM methods). Input channels (x, y, score) of one infant:
# (B, 1 clip, 1 person, T, 17, 3). Standard width: 10 stages, 64 -> 128 -> 256 channels, time
# halved at stages 5 and 8. data_bn_type="VC" normalises each joint's channels over the batch.
model = dict(
    type="RecognizerGCN",
    backbone=dict(
        type="STGCN",
        graph_cfg=dict(layout="coco", mode="stgcn_spatial"),
        in_channels=3,
        base_channels=64,
        num_stages=10,
        inflate_stages=[5, 8],
        down_stages=[5, 8],
    ),
    cls_head=dict(type="GCNHead", num_classes=3, in_channels=256, average_clips="prob"),
)
