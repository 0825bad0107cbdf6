"""Model components of gm_plugins, registered into MMAction2's ``MODELS`` registry."""

from .backbones import C3DFeatures
from .data_preprocessors import TwoStreamDataPreprocessor, flip_horizontally
from .fusion import BaseFusion, ConcatConvFusion, LateFusion, LSTMFusion, PoolFusion, SumFusion
from .heads import FusionClsHead
from .recognizers import STREAM_LAYOUTS, MultiStreamRecognizer

__all__ = [
    "STREAM_LAYOUTS",
    "BaseFusion",
    "C3DFeatures",
    "ConcatConvFusion",
    "FusionClsHead",
    "LSTMFusion",
    "LateFusion",
    "MultiStreamRecognizer",
    "PoolFusion",
    "SumFusion",
    "TwoStreamDataPreprocessor",
    "flip_horizontally",
]
