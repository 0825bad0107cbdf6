# The paper's late-fusion variant (class scores of the two streams averaged) at the demo size of
# two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py, with the same frozen random RGB
# backbone (see there why) and the same data and schedule.
_base_ = [
    "../_base_/models/two-stream_r18-3stage-late-fusion.py",
    "../_base_/datasets/gm-synthetic_cache_demo.py",
    "../_base_/schedules/adamw_cosine_rgb-frozen-random_demo.py",
    "../_base_/default_runtime_demo.py",
]
