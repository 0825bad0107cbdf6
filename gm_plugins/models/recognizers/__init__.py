"""Recognizers of gm_plugins."""

from .two_stream import STREAM_LAYOUTS, TwoStreamRecognizer

__all__ = ["STREAM_LAYOUTS", "TwoStreamRecognizer"]
