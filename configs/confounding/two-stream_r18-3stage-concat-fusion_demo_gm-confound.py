# The confounding experiment (the paper's central claim): recording environments confounded with
# the classes in training, independent in testing. Trains and validates on data/gm_confound
#   python tools/data/make_synthetic_dataset.py --out data/gm_confound --subjects 48 --seed 1 \
#       --confound 1.0 --prep-subjects 0
# (every infant's environment family is one of the two tied to its class), and tests every fold's
# model on all 48 infants of data/gm_synthetic (seed 0, --confound 0: environment independent of
# class, other infants). This config: the demo two-stream model with background removal and body
# alignment (configs/preprocess/preprocess_unet-seg_res18-pose_farneback-k30-s3.75-64_demo.py).
# Run the whole set with `make confounding` (tools/run_benchmark.py confounding).
_base_ = [
    "../_base_/models/two-stream_r18-3stage-concat-fusion.py",
    "../_base_/datasets/gm-confound_cache_demo.py",
    "../_base_/schedules/adamw_cosine_rgb-frozen-random_demo.py",
    "../_base_/default_runtime_demo.py",
]
