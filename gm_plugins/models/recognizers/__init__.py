"""Recognizers of gm_plugins."""

from .multi_stream import STREAM_LAYOUTS, MultiStreamRecognizer

__all__ = ["STREAM_LAYOUTS", "MultiStreamRecognizer"]
