# spatial-only on the benchmark, RGB stream kept at its random initial weights.
_base_ = ["./_base_/spatial-only.py"]

optim_wrapper = _base_.rgb_frozen
