# Ablation "without background removal and without alignment": no network at all, the whole frame
# fitted into a 64x64 square and Farneback flow (the demo chain's bound in pixels), i.e. what a
# two-stream model sees without the paper's preprocessing.
_base_ = ["../_base_/preprocess/default_chain.py"]

letterbox = dict(type="LetterboxFrames", out_size=64)
flow = dict(_base_.flow, bound=20.0 * 64 / 224)
preprocess_pipeline = [_base_.decode, letterbox, flow]
