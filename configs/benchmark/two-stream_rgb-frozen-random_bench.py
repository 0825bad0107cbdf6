# two-stream on the benchmark, RGB stream kept at its random initial weights.
_base_ = ["./_base_/two-stream.py"]

optim_wrapper = _base_.rgb_frozen
