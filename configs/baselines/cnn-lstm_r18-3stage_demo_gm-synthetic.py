# Baseline CNN + LSTM at CPU demo size on the synthetic default dataset, evaluated like the
# two-stream model (same windows, folds and SubjectMetric).
#
# Why the demo differs from full size (cnn-lstm_r50_12x30f_gm3.py): it must train one fold in
# about 2 minutes on one CPU thread, so each frame goes through ResNet-18 cut after stage 3 (as in
# spatial-only_r18-3stage_demo_gm-synthetic.py) at 64 px, trained from scratch, the LSTM has 128
# hidden units, and the window gives T=3 consecutive cached frames (1/3 s at 6 fps) instead of
# all 7: the per-frame CNN costs T times the single-frame spatial stream. The frames are those of
# tsn-rgb_r18-3stage_demo_gm-synthetic.py, so the two baselines differ only in how time is
# aggregated (average vs LSTM). Training shifts the 3 frames by up to 2 cached frames. Like the
# spatial-only demo it can memorise the 24 training infants' appearance: a baseline, not frozen.
#
# One CPU thread (OMP_NUM_THREADS=1 tools/train.py CONFIG): an epoch (57 iterations and
# validation) takes about 1.3x the two-stream demo's (24 s vs 19 s side by side on a
# busy machine), so the 8 epochs take about 2 minutes where the two-stream demo takes 96 s.
_base_ = [
    "../_base_/models/cnn-lstm_r18-3stage.py",
    "../_base_/datasets/gm-synthetic_cache_demo_rgb3.py",
    "../_base_/schedules/adamw_cosine_demo.py",
    "../_base_/default_runtime_demo.py",
]
