# The evaluation-grade preprocessing chain on the synthetic data, with the model zoo's models
# (`make preprocessing` retrains them and scores the chain against the ground truth): background
# removal with the 16-channel UNet, body alignment with the 192 px pose model (both trained on the
# 1200 extra infants of data/gm_preprocessing), and Farneback optical flow. Paper settings
# throughout (frames sampled at 6 fps, i.e. every 5th frame of 30 fps, pose every 30 frames, crop
# 3.75 trunk lengths, flow clipped to 20 px) except the output side: 112 instead of 224, which
# keeps the two-stream model fast on a CPU. The demo uses smaller models (preprocess_*_demo.py).
#   python tools/run_benchmark.py preprocessing   # retrain the models, score them
#   python tools/data/preprocess_videos.py THIS_CONFIG --data-root data/gm_synthetic \
#       --out data/gm_synthetic/cache --workers 2
_base_ = ["../_base_/preprocess/default_chain.py"]

seg_config = "configs/preprocess/fcn_unet-s5-c16_b4-12k_synthetic-seg-160x120.py"
seg_checkpoint = "zoo/preprocess/fcn_unet-s5-c16_b4-12k_synthetic-seg-160x120-bec78504.pth"
pose_config = "configs/preprocess/td-hm_res18-c32_dark-b16-20e-ft60e_synthetic-pose-192x192.py"
pose_checkpoint = (
    "zoo/preprocess/td-hm_res18-c32_dark-b16-20e-ft60e_synthetic-pose-192x192-1695588f.pth"
)

background_removal = dict(_base_.background_removal, config=seg_config, checkpoint=seg_checkpoint)
alignment = dict(_base_.alignment, config=pose_config, checkpoint=pose_checkpoint, out_size=112)
preprocess_pipeline = [_base_.decode, background_removal, alignment, _base_.flow]
