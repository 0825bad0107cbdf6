"""Data transforms of the preprocessing chain, registered into MMAction2's TRANSFORMS.

``DecodeFrames`` -> ``BackgroundRemoval`` (any mmseg model) -> ``PoseAlignment`` (any mmpose
top-down model; ``LetterboxFrames`` for no adjustment) -> ``OpticalFlow`` (OpenCV).
:func:`preprocess_video` runs such a chain on one video, offline
(``tools/preprocess_videos.py``) or online.
"""

from .alignment import LetterboxFrames, PoseAlignment
from .background import BackgroundRemoval
from .decoding import (
    DecodeFrames,
    VideoDecodeError,
    decode_video,
    iter_sampled_frames,
    probe_video,
)
from .flow import OpticalFlow
from .library_models import CheckpointMismatchError, clear_model_cache, load_model
from .pose_training import BlackOutBackground
from .preprocess import build_preprocess_pipeline, cache_record, preprocess_video

__all__ = [
    "BackgroundRemoval",
    "BlackOutBackground",
    "CheckpointMismatchError",
    "DecodeFrames",
    "LetterboxFrames",
    "OpticalFlow",
    "PoseAlignment",
    "VideoDecodeError",
    "build_preprocess_pipeline",
    "cache_record",
    "clear_model_cache",
    "decode_video",
    "iter_sampled_frames",
    "load_model",
    "preprocess_video",
    "probe_video",
]
