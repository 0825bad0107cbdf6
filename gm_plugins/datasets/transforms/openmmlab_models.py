"""mmseg / mmpose models for the transforms: load once, check the checkpoint, run in batches.

``load_model`` builds a model from its config, loads a checkpoint strictly (a checkpoint of
another architecture raises ``CheckpointMismatchError`` naming both files) and caches it;
``BatchRunner`` runs the config's own test pipeline and ``test_step`` on batches of frames.

Models are cached by (library, config, checkpoint, device), so every transform instance and
every video of a process share one model. They are built under their library's default scope
(:func:`gm_plugins.compat.library_scope`), which keeps the caller's scope intact.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from gm_plugins.compat import library_scope

_MODEL_CACHE: dict[tuple[str, str, str, str], torch.nn.Module] = {}


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model its config describes. The message names both files."""


def _resolve(path: str | os.PathLike | None, what: str) -> str:
    if path is None:
        return ""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def check_model_files(library: str, config, checkpoint=None) -> None:
    """Raise FileNotFoundError naming a missing config or checkpoint (before any model loads)."""
    _resolve(config, f"{library} config")
    _resolve(checkpoint, f"{library} checkpoint")


def _init_function(library: str) -> Callable:
    if library == "mmseg":
        from mmseg.apis import init_model
    elif library == "mmpose":
        from mmpose.apis import init_model
    else:
        raise ValueError(f"library must be 'mmseg' or 'mmpose', got {library!r}")
    return init_model


def _load_weights(model: torch.nn.Module, checkpoint: str, config: str) -> None:
    """Load ``checkpoint`` strictly: missing, unexpected or mis-shaped weights are errors."""
    from mmengine.runner import load_checkpoint

    try:
        loaded = load_checkpoint(
            model, checkpoint, map_location="cpu", strict=True, logger="silent"
        )
    except RuntimeError as error:
        summary = "\n".join(str(error).strip().splitlines()[:6])
        raise CheckpointMismatchError(
            f"checkpoint {checkpoint} does not match the model of config {config}:\n{summary}\n"
            "Pass the checkpoint that was trained with this config (tools/train.py CONFIG writes "
            "it to work_dirs/<config name>/)."
        ) from error
    except Exception as error:
        raise CheckpointMismatchError(
            f"checkpoint {checkpoint} cannot be read ({type(error).__name__}: {error}); "
            "it may be truncated or not a PyTorch checkpoint"
        ) from error
    dataset_meta = loaded.get("meta", {}).get("dataset_meta") if isinstance(loaded, dict) else None
    if dataset_meta:
        model.dataset_meta = dataset_meta


def load_model(
    library: str,
    config: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str = "cpu",
) -> torch.nn.Module:
    """An mmseg or mmpose model in eval mode, built once per process and then reused.

    Args:
        library: 'mmseg' or 'mmpose'.
        config: the model's config file (any model of that library).
        checkpoint: its weights, or None for randomly initialised weights.
        device: e.g. 'cpu' or 'cuda:0'.

    Raises:
        FileNotFoundError: config or checkpoint missing.
        CheckpointMismatchError: the checkpoint does not fit the config's model.
    """
    config_path = _resolve(config, f"{library} config")
    checkpoint_path = _resolve(checkpoint, f"{library} checkpoint")
    key = (library, config_path, checkpoint_path, device)
    if key not in _MODEL_CACHE:
        init_model = _init_function(library)
        with library_scope(library):
            model = init_model(config_path, None, device=device)
            if checkpoint_path:
                _load_weights(model, checkpoint_path, config_path)
        model.eval()
        _MODEL_CACHE[key] = model
    return _MODEL_CACHE[key]


def clear_model_cache() -> None:
    """Forget every cached model, freeing its memory; the next ``load_model`` rebuilds it."""
    _MODEL_CACHE.clear()


def inference_pipeline_config(model: torch.nn.Module, library: str) -> list[dict]:
    """The config's test pipeline with image loading replaced by in-memory arrays."""
    cfg = model.cfg
    pipeline = cfg.get("test_pipeline", None)
    if pipeline is None:
        pipeline = cfg.test_dataloader.dataset.pipeline
    steps = []
    for step in pipeline:
        kind = step["type"].split(".")[-1]
        if kind == "LoadAnnotations":
            continue  # inference has no labels
        if kind == "LoadImageFromFile" and library == "mmseg":
            step = dict(type="LoadImageFromNDArray")
        steps.append(dict(step))
    return steps


class BatchRunner:
    """Runs a library model's own test pipeline and ``test_step`` on batches of samples."""

    def __init__(self, model: torch.nn.Module, library: str, batch_size: int = 16) -> None:
        from mmengine.dataset import Compose

        self.model = model
        self.library = library
        self.batch_size = batch_size
        with library_scope(library):
            self.pipeline = Compose(inference_pipeline_config(model, library))

    def __call__(self, samples: list[dict]) -> list:
        """Data samples predicted for ``samples`` (dicts the test pipeline accepts)."""
        from mmengine.dataset import pseudo_collate

        predictions = []
        with library_scope(self.library), torch.no_grad():
            for start in range(0, len(samples), self.batch_size):
                batch = [self.pipeline(dict(s)) for s in samples[start : start + self.batch_size]]
                predictions.extend(self.model.test_step(pseudo_collate(batch)))
        return predictions


def rgb_to_model_input(frame: np.ndarray) -> np.ndarray:
    """RGB frame -> the BGR order that mmseg/mmpose image loaders produce (and configs expect).

    Their data preprocessors then apply ``bgr_to_rgb`` exactly as they did in training.
    """
    return np.ascontiguousarray(frame[..., ::-1])
