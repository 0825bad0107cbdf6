# The preprocessing chain (Hashimoto et al., MICCAI 2022) as named steps at the paper's settings,
# so that a chain config (configs/preprocess/preprocess_*.py) changes one field of one step:
#   alignment = dict(_base_.alignment, keyframe_interval=5)
#   preprocess_pipeline = [_base_.decode, _base_.background_removal, alignment, _base_.flow]
# mmengine merges dicts but replaces lists, so a chain restates its list of steps, by name. Each
# chain adds its models' files to background_removal and alignment (config=..., checkpoint=...).
default_scope = "mmaction"
custom_imports = dict(imports=["gm_plugins"], allow_failed_imports=False)

# Frames sampled at 6 fps: every 5th frame of 30 fps, the nearest frame to every 1/6 s otherwise;
# frames larger than 640 px (HD recordings) are shrunk to 640 on the long side as they are
# decoded, which is more than the crop around the infant needs at 224 px output.
decode = dict(type="DecodeFrames", target_fps=6.0, max_side=640)
# Soft masks of the infant from a segmentation model.
background_removal = dict(type="BackgroundRemoval", mask_mode="soft", batch_size=32)
# Pose every 30 source frames; one similarity per video cropping 3.75 trunk lengths to 224x224.
alignment = dict(
    type="PoseAlignment",
    keyframe_interval=30,
    mode="video",
    scale=3.75,
    out_size=224,
    min_keypoint_score=0.3,
    batch_size=32,
)
# Farneback optical flow clipped to +-20 px.
flow = dict(type="OpticalFlow", algorithm="farneback", bound=20.0)

preprocess_pipeline = [decode, background_removal, alignment, flow]
