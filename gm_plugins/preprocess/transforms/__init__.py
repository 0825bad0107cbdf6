"""Data transforms of the preprocessing chain, registered into MMAction2's TRANSFORMS.

``DecodeFrames`` -> ``BackgroundRemoval`` (any mmseg model) -> ``PoseAlignment`` (any mmpose
top-down model; ``LetterboxFrames`` for no adjustment) -> ``OpticalFlow`` (OpenCV) ->
``InfantPresenceGate``. :mod:`gm_plugins.datasets.preprocessing` runs such a chain on one video,
streamed into the cache (``tools/preprocess_videos.py``, the dataset's online path) or in memory.
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
from .openmmlab_models import CheckpointMismatchError, clear_model_cache, load_model
from .quality_gate import InfantPresenceGate

__all__ = [
    "BackgroundRemoval",
    "CheckpointMismatchError",
    "DecodeFrames",
    "InfantPresenceGate",
    "LetterboxFrames",
    "OpticalFlow",
    "PoseAlignment",
    "VideoDecodeError",
    "clear_model_cache",
    "decode_video",
    "iter_sampled_frames",
    "load_model",
    "probe_video",
]
