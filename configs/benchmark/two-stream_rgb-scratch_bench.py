# two-stream on the benchmark, RGB stream trained from random initial weights (see
# _base_/rgb-r18c32.py for the four variants).
_base_ = [
    "./_base_/two-stream.py",
    "./_base_/bench-data.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "./_base_/default_runtime_bench.py",
]
