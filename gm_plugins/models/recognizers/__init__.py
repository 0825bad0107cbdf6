"""Recognizers of gm_plugins."""

from .multi_stream import MultiStreamRecognizer
from .streams import STREAM_LAYOUTS

__all__ = ["STREAM_LAYOUTS", "MultiStreamRecognizer"]
