# The wider segmentation model for evaluation-grade preprocessing: the 12k-iteration UNet with
# twice the channels (16 at full resolution, about 4x the compute), trained on the 900 extra infants
# of data/gm_preprocessing (3 frames each) instead of 180, so that clothing patterns and cluttered
# or skin-coloured backgrounds are seen often enough to be told apart.
#   python tools/data/make_synthetic_dataset.py --out data/gm_preprocessing --subjects 3 \
#       --seed 2 --prep-subjects 1200 --prep-frames 3
#   python tools/train.py configs/preprocess/fcn_unet-s5-c16_b4-12k_synthetic-seg-160x120.py
_base_ = ["./fcn_unet-s5-c8_b4-12k_synthetic-seg-160x120.py"]

data_root = "data/gm_preprocessing/mmseg/"
model = dict(
    backbone=dict(base_channels=16),
    decode_head=dict(in_channels=16, channels=16),
)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
