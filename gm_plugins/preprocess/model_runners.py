"""mmseg / mmpose models for the transforms: load once, check the checkpoint, run in batches.

``load_model`` builds a model from its config, loads a checkpoint strictly (a checkpoint of
another architecture raises ``CheckpointMismatchError`` naming both files) and caches it;
``BatchRunner`` runs the config's own test pipeline and ``test_step`` on batches of frames.

Models are cached by (library, config, checkpoint, device), so every transform instance and
every video of a process share one model. They are built under their library's default scope
(:func:`gm_plugins.compat.library_scope`), which keeps the caller's scope intact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
import torch
from mmengine.logging import print_log

from gm_plugins.compat import library_scope
from gm_plugins.runtime.onnx import OnnxExportError, ort_session, segmentation_onnx
from gm_plugins.utils.zoo import verify_published

_MODEL_CACHE: dict[tuple[str, str, str, str], torch.nn.Module] = {}


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model its config describes. The message names both files."""


def _resolve(path: str | os.PathLike | None, what: str) -> str:
    if path is None:
        return ""
    if str(path).startswith(("http://", "https://")):
        raise FileNotFoundError(
            f"{what} is a URL ({path}): chains load local files only (caches fingerprint them and "
            f"bundles copy them). Download it once (e.g. `wget -P checkpoints/ {path}`) and name "
            "the local path (docs/en/user_guides/preprocessing_backends.md)"
        )
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

    verify_published(checkpoint)  # a zoo file must still match the hash in its name
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


#: Test-pipeline steps :class:`SegmentationRunner` reproduces: image loading (frames are in
#: memory), label loading (none at inference), resizing (run as configured) and packing.
_SEG_FAST_STEPS = {"LoadImageFromFile", "LoadImageFromNDArray", "LoadAnnotations", "Resize"}
_SEG_PACK = "PackSegInputs"


#: Where :class:`SegmentationRunner` runs the network.
SEGMENTATION_BACKENDS = ("pytorch", "onnxruntime")


def segmentation_fast_path_problem(model: torch.nn.Module) -> str | None:
    """Why :class:`SegmentationRunner` cannot run ``model`` (None when it can).

    It runs mmseg ``EncoderDecoder`` models with mmseg's ``SegDataPreProcessor`` in ``whole``
    test mode whose test pipeline only loads, resizes and packs the image.
    """
    from mmseg.models import SegDataPreProcessor
    from mmseg.models.segmentors import EncoderDecoder

    if not isinstance(model, EncoderDecoder):
        return f"{type(model).__name__} is not an EncoderDecoder"
    if type(model.data_preprocessor) is not SegDataPreProcessor:
        return f"data preprocessor {type(model.data_preprocessor).__name__}"
    if model.test_cfg.get("mode", "whole") != "whole":
        return f"test_cfg.mode={model.test_cfg.get('mode')!r} (only 'whole')"
    kinds = [step["type"].split(".")[-1] for step in inference_pipeline_config(model, "mmseg")]
    if not kinds or kinds[-1] != _SEG_PACK or set(kinds[:-1]) - _SEG_FAST_STEPS:
        return f"test pipeline {kinds} has steps other than loading, Resize and {_SEG_PACK}"
    return None


def _fused_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy of ``model`` with batch norms folded into convolutions, channels last."""
    import copy

    from mmcv.cnn import fuse_conv_bn

    return fuse_conv_bn(copy.deepcopy(model).eval()).to(memory_format=torch.channels_last)


class SegmentationRunner:
    """Class logits of an mmseg ``EncoderDecoder`` for batches of in-memory frames.

    The same computation as :class:`BatchRunner` + mmseg's ``postprocess_result`` for the
    logits, without the per-sample overhead: each frame goes through the config's own
    ``Resize`` steps, the batch is normalised and padded as the model's data preprocessor
    does (:meth:`inputs`, on the whole batch) and goes through ``inference``; the padding is
    cropped and the logits resized back to the frame size for the whole batch at once. No
    arg-max (the masks use the logits). Frames are RGB, as the transforms hold them.

    With ``optimise`` the network runs on a copy of the model whose batch norms are folded
    into the preceding convolutions (mmcv's ``fuse_conv_bn``) in channels-last memory layout,
    which the CPU convolutions run about twice as fast; logits change by float rounding only.

    With ``backend='onnxruntime'`` the network (not the resizing around it) runs in ONNX
    Runtime, on the CPU about twice as fast again for the shipped UNets: the model is exported
    on first use per input size (:func:`gm_plugins.runtime.onnx.segmentation_onnx`, parity
    checked against PyTorch within 1e-4) and kept under ``onnx_key`` in ``onnx_dir``; the
    session uses as many threads as torch.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        batch_size: int = 16,
        optimise: bool = True,
        backend: str = "pytorch",
        onnx_key: str | None = None,
        onnx_dir: str | os.PathLike | None = None,
    ) -> None:
        from mmengine.dataset import Compose

        if backend not in SEGMENTATION_BACKENDS:
            raise ValueError(f"backend={backend!r}: choose one of {SEGMENTATION_BACKENDS}")
        problem = segmentation_fast_path_problem(model)
        if problem is not None:
            raise ValueError(f"SegmentationRunner cannot run this model: {problem}")
        if optimise:
            model = _fused_channels_last(model)
        self.model = model
        channels_last = optimise and backend == "pytorch"
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.batch_size = batch_size
        self.backend = backend
        self.onnx_key, self.onnx_dir = onnx_key, onnx_dir
        self._sessions: dict[tuple[int, int], object] = {}
        steps = inference_pipeline_config(model, "mmseg")
        resizes = [step for step in steps if step["type"].split(".")[-1] == "Resize"]
        with library_scope("mmseg"):
            self.resize = Compose(resizes)

    def inputs(self, frames: list[np.ndarray]) -> tuple[torch.Tensor, tuple[int, int]]:
        """RGB (H, W, 3) uint8 frames of one size -> the network's input (N, 3, h', w') and
        the resized (h, w) before padding.

        What the test pipeline and the data preprocessor give, for the whole batch at once:
        the config's ``Resize``, the preprocessor's channel order, ``(x - mean) / std`` and
        zero padding at the right and bottom to its test ``size`` or ``size_divisor``.
        """
        preprocessor = self.model.data_preprocessor
        shape = frames[0].shape[:2]
        images = np.stack(
            [
                self.resize(dict(img=frame, img_shape=shape, ori_shape=shape))["img"]
                for frame in frames
            ]
        )
        batch = torch.from_numpy(images)
        if not preprocessor.channel_conversion:  # the network sees BGR, the loaders' order
            batch = batch.flip(-1)
        batch = batch.permute(0, 3, 1, 2).float()  # a channels-last view of (N, 3, h, w)
        if preprocessor._enable_normalize:
            batch = (batch - preprocessor.mean) / preprocessor.std
        height, width = images.shape[1:3]
        test_cfg = preprocessor.test_cfg or {}
        padded = (height, width)
        if test_cfg.get("size"):
            padded = tuple(max(a, b) for a, b in zip(test_cfg["size"], padded, strict=True))
        elif test_cfg.get("size_divisor"):
            divisor = test_cfg["size_divisor"]
            padded = tuple(-(-side // divisor) * divisor for side in padded)
        if padded != (height, width):
            padding = (0, padded[1] - width, 0, padded[0] - height)
            batch = torch.nn.functional.pad(batch, padding, value=preprocessor.pad_val)
        return batch.contiguous(memory_format=self.memory_format), (height, width)

    def __call__(self, frames: list[np.ndarray]) -> torch.Tensor:
        """RGB (H, W, 3) uint8 frames, all of one size -> float32 logits (N, C, H, W) at the
        frames' size."""
        from mmseg.models.utils import resize

        if not frames:
            raise ValueError("no frames")
        shape = frames[0].shape[:2]
        if any(frame.shape[:2] != shape for frame in frames):
            raise ValueError("SegmentationRunner needs frames of one size")
        outputs = []
        with library_scope("mmseg"), torch.no_grad():
            for start in range(0, len(frames), self.batch_size):
                batch, (height, width) = self.inputs(frames[start : start + self.batch_size])
                meta = dict(
                    ori_shape=shape,
                    img_shape=(height, width),
                    pad_shape=tuple(batch.shape[2:]),
                    img_padding_size=[0, batch.shape[3] - width, 0, batch.shape[2] - height],
                )
                logits = self._network(batch, meta)
                logits = logits[:, :, :height, :width].contiguous()  # padding off
                outputs.append(
                    resize(
                        logits,
                        size=shape,
                        mode="bilinear",
                        align_corners=self.model.align_corners,
                        warning=False,
                    )
                )
        return torch.cat(outputs)

    def _network(self, batch: torch.Tensor, meta: dict) -> torch.Tensor:
        """(N, 3, h, w) network input -> logits (N, K, h, w)."""
        if self.backend == "pytorch":
            return self.model.inference(batch, [meta] * len(batch))
        size = (int(batch.shape[2]), int(batch.shape[3]))
        session = self._sessions.get(size)
        if session is None:
            try:
                path = segmentation_onnx(self.model, size, self.onnx_key, self.onnx_dir)
            except OnnxExportError as error:  # same masks from PyTorch, only slower
                print_log(
                    f"SegmentationRunner: ONNX Runtime cannot run this model ({error}); "
                    "running it in PyTorch",
                    logger="current",
                    level=logging.WARNING,
                )
                self.backend = "pytorch"
                return self.model.inference(batch, [meta] * len(batch))
            session = self._sessions[size] = ort_session(path, torch.get_num_threads())
        (logits,) = session.run(None, {"image": batch.contiguous().numpy()})
        return torch.from_numpy(logits)


def rgb_to_model_input(frame: np.ndarray) -> np.ndarray:
    """RGB frame -> the BGR order that mmseg/mmpose image loaders produce (and configs expect).

    Their data preprocessors then apply ``bgr_to_rgb`` exactly as they did in training.
    """
    return np.ascontiguousarray(frame[..., ::-1])
