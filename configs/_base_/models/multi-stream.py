# What every MultiStreamRecognizer model here shares: the 3-class FusionClsHead (sized for the
# paper's 2048-channel ResNet-50 features) and the data preprocessor with ImageNet RGB
# normalisation and random horizontal flips. A model file inherits it and sets its streams,
# fusion and what differs (the head's in_channels, the flow normalisation).
model = dict(
    type="MultiStreamRecognizer",
    cls_head=dict(
        type="FusionClsHead",
        num_classes=3,
        in_channels=2048,
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips="prob",
    ),
    data_preprocessor=dict(
        type="TwoStreamDataPreprocessor",
        rgb_mean=[123.675, 116.28, 103.53],
        rgb_std=[58.395, 57.12, 57.375],
        flip_prob=0.5,
    ),
)
