"""Data transforms of the preprocessing chain, registered into MMAction2's TRANSFORMS.

``DecodeFrames`` -> ``BackgroundRemoval`` (any mmseg model) -> ``PoseAlignment`` (any mmpose
top-down model; ``LetterboxFrames`` for no adjustment) -> ``OpticalFlow`` (OpenCV) ->
``InfantPresenceGate``. :mod:`gm_plugins.preprocess.streaming` runs such a chain on one video,
streamed into the cache (``tools/data/preprocess_videos.py``, the dataset's online path) or in
memory.
"""

from gm_plugins.preprocess.model_runners import (
    CheckpointMismatchError,
    clear_model_cache,
    load_model,
)
from gm_plugins.preprocess.transforms.alignment import LetterboxFrames, PoseAlignment
from gm_plugins.preprocess.transforms.background import BackgroundRemoval
from gm_plugins.preprocess.transforms.decoding import (
    DecodeFrames,
    VideoDecodeError,
    decode_video,
    iter_sampled_frames,
    probe_video,
)
from gm_plugins.preprocess.transforms.flow import OpticalFlow
from gm_plugins.preprocess.transforms.quality_gate import InfantPresenceGate

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
