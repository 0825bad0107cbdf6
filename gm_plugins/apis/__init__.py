"""Inference, as ``mmaction.apis``: load a model (:func:`init_gm_model`) and classify videos
(:class:`GMInferencer`), with its report and output files."""

from .inference import GMInferencer, GMModel, init_gm_model

__all__ = ["GMInferencer", "GMModel", "init_gm_model"]
