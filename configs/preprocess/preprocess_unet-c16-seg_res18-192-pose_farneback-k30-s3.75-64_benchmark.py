# The benchmark's chain (configs/benchmark/, `make table1`, `make confounding`): the
# evaluation-grade models of the chain it inherits (16-channel UNet, 192 px pose model; `make
# preprocessing` scores them) at the demo's 64 px output, which keeps the benchmark's classifiers
# trainable on 2 CPU cores. Flow clipped to 20 px at 224 px.
_base_ = ["./preprocess_unet-c16-seg_res18-192-pose_farneback-k30-s3.75-112_synthetic.py"]

alignment = dict(_base_.alignment, out_size=64)
flow = dict(_base_.flow, bound=20.0 * 64 / 224)
preprocess_pipeline = [_base_.decode, _base_.background_removal, alignment, flow]
