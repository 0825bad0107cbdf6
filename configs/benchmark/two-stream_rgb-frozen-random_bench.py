# two-stream on the benchmark, RGB stream kept at its random initial weights.
_base_ = [
    "./_base_/two-stream.py",
    "./_base_/bench-data.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "./_base_/default_runtime_bench.py",
]

optim_wrapper = _base_.rgb_frozen
