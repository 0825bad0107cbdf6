"""ONNX export of the classifier and of the preprocessing networks, checked with ONNX Runtime.

Three networks can be exported, each as the tensor path between the library's data
preprocessor and its decoding (what stays in Python is listed per function):

- the classifier (:func:`export_classifier`): normalised stream tensors -> class scores;
- the segmentation model (:func:`export_segmentation`): a normalised image -> logits;
- the top-down pose model (:func:`export_pose`): a normalised crop -> heatmaps.

Every export uses ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``:
the torch.export-based one needs the ``onnxscript`` package), writes ``NAME.onnx`` atomically
next to a ``NAME.json`` sidecar (inputs and outputs with their shapes, the normalisation the
inputs need, the opset, and the sha256 of the source config, checkpoint and ONNX file), and
runs the ONNX model with ONNX Runtime right after export on random inputs of several batch
sizes: when the largest absolute difference to PyTorch exceeds ``tolerance * max(1, scale)``
(``scale``: the largest absolute PyTorch output) it raises :class:`ParityError` and leaves no
ONNX file behind. The batch axis of every model is dynamic; the other axes keep the export's
sizes. :func:`export_bundle_models` exports all three from a model bundle.
:class:`gm_plugins.apis.onnx_backend.OnnxClassifier` runs an exported classifier.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from gm_plugins.deploy.bundle import MODEL_STEPS, load_bundle, sha256_of
from gm_plugins.runtime.onnx import (
    OPSET,
    PARITY_BATCH_SIZES,
    PARITY_TOLERANCE,
    ExportResult,
    OnnxExportError,
    SegmentationGraph,
    export_module,
    random_input,
)
from gm_plugins.utils.config import SUPPORTED_SCOPES, ConfigError, load_config

#: Classifier outputs: the head's class scores and their softmax.
CLASSIFIER_OUTPUTS = ("logits", "probs")


# -- the exported graphs ----------------------------------------------------------------------


class ClassifierGraph(nn.Module):
    """A ``MultiStreamRecognizer``'s tensor path: backbones, fusion and head.

    Shapes:
        One positional input per stream, in ``recognizer.streams`` order: ``rgb`` (N, T, 3, H, W)
        and/or ``flow`` (N, L, 2, H, W), float32, normalised as ``TwoStreamDataPreprocessor``
        gives them -> ``logits`` (N, K), the head's class scores, and ``probs`` (N, K), their
        softmax over the K classes.
    """

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer
        self.streams = tuple(recognizer.streams)

    def forward(self, *streams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = dict(zip(self.streams, streams, strict=True))
        logits, _ = self.recognizer.extract_feat(inputs, stage="head")
        return logits, logits.softmax(dim=-1)


class PoseGraph(nn.Module):
    """An mmpose top-down estimator's tensor path: backbone, neck and head, no decoding.

    Shapes:
        crop (N, 3, h, w) float32, normalised as the model's ``PoseDataPreprocessor`` gives it
        -> the head's output, e.g. heatmaps (N, K, h', w') for ``HeatmapHead`` (a tuple for
        heads with several outputs, such as SimCC's x and y vectors).
    """

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        self.estimator = estimator

    def forward(self, crop: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        output = self.estimator._forward(crop)
        return tuple(output) if isinstance(output, list) else output


# -- loading models ---------------------------------------------------------------------------


def _require_file(path: str | os.PathLike | None, what: str, fix: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist: {fix}")
    return path


def _config_scope(config: str | os.PathLike) -> str | None:
    cfg = load_config(config, scopes=(*SUPPORTED_SCOPES, None))
    return cfg.get("default_scope", None)


_SUBCOMMAND = {"mmaction": "recognizer", None: "recognizer", "mmseg": "seg", "mmpose": "pose"}


def _check_scope(config: str | os.PathLike, wanted: tuple[str | None, ...], what: str) -> None:
    scope = _config_scope(config)
    if scope not in wanted:
        other = _SUBCOMMAND.get(scope, "another tool")
        raise ConfigError(
            f"{config} has default_scope={scope!r}, so it is not a {what} config: export it "
            f"with `tools/deployment/export_onnx.py {other}`"
        )


def load_classifier(
    config: str | os.PathLike | Config, checkpoint: str | os.PathLike | None = None
) -> nn.Module:
    """Build a ``MultiStreamRecognizer`` in eval mode on the CPU; random weights without a
    checkpoint, otherwise the checkpoint loaded strictly.

    Raises:
        FileNotFoundError: config or checkpoint missing (the message names it).
        ConfigError: not a classifier config, or the checkpoint does not fit it.
    """
    from gm_plugins.models.loading import load_recognizer
    from gm_plugins.models.recognizers.multi_stream import MultiStreamRecognizer

    if isinstance(config, Config):
        cfg = config
    else:
        _check_scope(config, ("mmaction", None), "classifier")
        cfg = load_config(config, scopes=("mmaction", None), required=("model",))
    model_type = cfg.model.get("type")
    if model_type != "MultiStreamRecognizer":
        raise ConfigError(
            f"{getattr(cfg, 'filename', None) or 'the config'}: model type {model_type!r}; ONNX "
            "export supports MultiStreamRecognizer classifiers"
        )
    model = load_recognizer(cfg, checkpoint, "cpu", optimize=checkpoint is not None)
    if not isinstance(model, MultiStreamRecognizer):
        raise ConfigError(f"the config built a {type(model).__name__}, not a MultiStreamRecognizer")
    return model.eval()


def load_library_model(
    library: str, config: str | os.PathLike, checkpoint: str | os.PathLike | None = None
) -> nn.Module:
    """An mmseg (``library='mmseg'``) or mmpose (``'mmpose'``) model in eval mode on the CPU.

    Raises:
        FileNotFoundError: config or checkpoint missing (the message names it).
        ConfigError: a config of another library.
        CheckpointMismatchError: the checkpoint does not fit the config's model.
    """
    from gm_plugins.preprocess.model_runners import load_model

    what = {"mmseg": "segmentation", "mmpose": "pose"}[library]
    _require_file(config, f"{what} config", "pass the model config the chain config names")
    _require_file(
        checkpoint,
        f"{what} checkpoint",
        f"train it with tools/train.py {config} (it writes work_dirs/<config name>/*.pth), or "
        "leave the checkpoint out to export random weights",
    )
    _check_scope(config, (library,), what)
    return load_model(library, config, checkpoint).eval()


# -- export and parity ------------------------------------------------------------------------


def source_record(config: str | os.PathLike | None, checkpoint: str | os.PathLike | None) -> dict:
    """The sidecar's ``source``: config and checkpoint paths and their sha256 (None if absent)."""

    def record(path):
        if path is None or not os.path.isfile(path):
            return None, None
        return os.fspath(path), sha256_of(path)

    config_path, config_sha = record(config)
    checkpoint_path, checkpoint_sha = record(checkpoint)
    return dict(
        config=config_path,
        config_sha256=config_sha,
        checkpoint=checkpoint_path,
        checkpoint_sha256=checkpoint_sha,
        weights="checkpoint" if checkpoint_path else "random (no checkpoint)",
    )


# -- the classifier ---------------------------------------------------------------------------


def classifier_input_shapes(
    recognizer: nn.Module, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """One window's input shape per stream, ``{stream: (T or L, C, H, W)}``.

    ``input_shapes`` wins; otherwise the recognizer's own ``input_shapes`` (from its config).

    Raises:
        OnnxExportError: neither gives a shape for every stream, or a shape has the wrong
            channels.
    """
    from gm_plugins.models.data_preprocessors import MODALITY_CHANNELS

    given = dict(input_shapes or {})
    own = dict(getattr(recognizer, "input_shapes", None) or {})
    shapes = {}
    for stream in recognizer.streams:
        shape = given.get(stream, own.get(stream))
        if shape is None:
            raise OnnxExportError(
                f"the classifier has no input_shapes for its {stream} stream: give the window "
                "size (tools/deployment/export_onnx.py recognizer CONFIG --size H [--frames T] "
                "[--flow-fields L]), or set model.input_shapes in the config"
            )
        shape = tuple(int(size) for size in shape)
        channels = MODALITY_CHANNELS[stream]
        if len(shape) != 4 or shape[1] != channels:
            raise OnnxExportError(
                f"{stream} input shape must be (steps, {channels}, H, W), got {shape}"
            )
        shapes[stream] = shape
    return shapes


def _float32_list(values: torch.Tensor) -> list[float]:
    """Float32 buffer values as the shortest decimals that give them back (123.675, not
    123.67500305175781)."""
    return [float(str(np.float32(value))) for value in values.flatten().tolist()]


def _classifier_normalisation(recognizer: nn.Module) -> dict:
    preprocessor = recognizer.data_preprocessor
    normalisation = {}
    for stream in recognizer.streams:
        mean = getattr(preprocessor, f"{stream}_mean", None)
        std = getattr(preprocessor, f"{stream}_std", None)
        if mean is None or std is None:
            raise OnnxExportError(
                f"the classifier's data preprocessor {type(preprocessor).__name__} has no "
                f"{stream}_mean/{stream}_std: ONNX export expects TwoStreamDataPreprocessor"
            )
        normalisation[stream] = dict(mean=_float32_list(mean), std=_float32_list(std))
    return normalisation


def export_classifier(
    config: str | os.PathLike | Config,
    onnx_path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    opset: int = OPSET,
    tolerance: float = PARITY_TOLERANCE,
    config_path: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
) -> ExportResult:
    """Export a two-stream (or one-stream) classifier's tensor path (:class:`ClassifierGraph`).

    Builds the recognizer from ``config`` (and ``checkpoint``) and calls
    :func:`export_recognizer`, which describes the ONNX model's inputs and outputs.

    Args:
        config: the classifier config (path or Config).
        onnx_path: the ``.onnx`` to write (the sidecar goes next to it).
        checkpoint: trained weights; None exports random weights.
        input_shapes: one window's shape per stream, ``dict(rgb=(T, 3, H, W),
            flow=(L, 2, H, W))``; defaults to the config's ``model.input_shapes``.
        opset: ONNX opset.
        tolerance: parity tolerance (see :func:`check_parity`).
        config_path: the config file recorded in the sidecar when ``config`` is a Config.
        class_names: recorded in the sidecar; default the config's ``classes``, if any.
    """
    recognizer = load_classifier(config, checkpoint)
    if config_path is None and not isinstance(config, Config):
        config_path = config
    source = source_record(config_path, checkpoint)
    return export_recognizer(
        recognizer, onnx_path, input_shapes, source, opset, tolerance, class_names
    )


def export_recognizer(
    recognizer: nn.Module,
    onnx_path: str | os.PathLike,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    source: dict | None = None,
    opset: int = OPSET,
    tolerance: float = PARITY_TOLERANCE,
    class_names: Sequence[str] | None = None,
) -> ExportResult:
    """Export a built ``MultiStreamRecognizer`` (eval mode) as :class:`ClassifierGraph`.

    Inputs of the ONNX model: ``rgb`` (N, T, 3, H, W) and/or ``flow`` (N, L, 2, H, W) float32,
    normalised: ``(x - mean) / std`` per channel with the sidecar's ``normalisation`` (RGB
    frames in RGB order on the 0-255 scale, flow in pixels), as ``TwoStreamDataPreprocessor``
    does; N is dynamic, the other axes are fixed to ``input_shapes``. Outputs: ``logits``
    (N, K) and ``probs`` (N, K) = softmax(logits). The recognizer's ``pred_score`` is
    ``probs`` when its head averages probabilities (``average_clips='prob'``), else
    ``logits``; the sidecar's ``pred_score`` names which.

    Args:
        recognizer: the classifier.
        onnx_path: the ``.onnx`` to write.
        input_shapes: see :func:`classifier_input_shapes`.
        source: the sidecar's ``source`` entry (config and checkpoint with their sha256).
        opset, tolerance: see :func:`export_module`.
        class_names: recorded in the sidecar; default the config's ``classes``, if any.
    """
    shapes = classifier_input_shapes(recognizer, input_shapes)
    graph = ClassifierGraph(recognizer).eval()
    example = {
        stream: random_input((2, *shape), seed)
        for seed, (stream, shape) in enumerate(shapes.items())
    }
    parity = [
        {
            stream: random_input((batch, *shape), 10 * batch + seed)
            for seed, (stream, shape) in enumerate(shapes.items())
        }
        for batch in PARITY_BATCH_SIZES
    ]
    head = recognizer.cls_head
    average = getattr(head, "average_clips", None)
    cfg = getattr(recognizer, "cfg", None)
    classes = class_names or (cfg.get("classes", None) if cfg is not None else None)
    sidecar = dict(
        kind="classifier",
        streams=list(recognizer.streams),
        input_shapes={stream: list(shape) for stream, shape in shapes.items()},
        normalisation=_classifier_normalisation(recognizer),
        num_classes=int(getattr(head, "num_classes", 0)) or None,
        class_names=list(classes) if classes else None,
        average_clips=average,
        pred_score="probs" if average == "prob" else "logits",
        source=source or source_record(None, None),
    )
    dynamic = {stream: {0: "batch"} for stream in shapes}
    return export_module(
        graph, example, onnx_path, CLASSIFIER_OUTPUTS, dynamic, parity, sidecar, opset, tolerance
    )


# -- segmentation and pose --------------------------------------------------------------------


def _pipeline(model: nn.Module) -> list[dict]:
    cfg = model.cfg
    pipeline = cfg.get("test_pipeline", None)
    if pipeline is None:
        with contextlib.suppress(AttributeError, KeyError):
            pipeline = cfg.test_dataloader.dataset.pipeline
    return list(pipeline or [])


def _image_normalisation(model: nn.Module) -> dict:
    cfg = dict(model.cfg.model.get("data_preprocessor", None) or {})
    return dict(
        mean=[float(value) for value in cfg.get("mean") or (0.0, 0.0, 0.0)],
        std=[float(value) for value in cfg.get("std") or (1.0, 1.0, 1.0)],
        channel_order="rgb" if cfg.get("bgr_to_rgb") else "bgr",
        note="the image loaders give BGR; the network sees channel_order after "
        "(x - mean) / std per channel on the 0-255 scale",
    )


def segmentation_input_size(model: nn.Module) -> tuple[int, int]:
    """The (H, W) the segmentation model sees for a landscape frame of the configured shape.

    The data preprocessor's fixed ``size`` if it has one, else the test pipeline's ``Resize``
    scale (as (short, long) side) rounded up to the preprocessor's ``size_divisor``.

    Raises:
        OnnxExportError: neither is in the config.
    """
    preprocessor = model.data_preprocessor
    size = getattr(preprocessor, "size", None)
    if size:
        return int(size[0]), int(size[1])
    for step in _pipeline(model):
        if str(step.get("type", "")).split(".")[-1] == "Resize" and step.get("scale"):
            scale = step["scale"]
            height, width = (min(scale), max(scale)) if step.get("keep_ratio") else scale[::-1]
            divisor = int(getattr(preprocessor, "size_divisor", None) or 1)
            return (math.ceil(height / divisor) * divisor, math.ceil(width / divisor) * divisor)
    raise OnnxExportError(
        "the segmentation config has no data_preprocessor.size and no Resize in its test "
        "pipeline: give the input size "
        "(tools/deployment/export_onnx.py seg CONFIG --input-size H W)"
    )


def export_segmentation(
    config: str | os.PathLike,
    onnx_path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    input_size: tuple[int, int] | None = None,
    opset: int = OPSET,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportResult:
    """Export an mmseg segmentation network (:class:`SegmentationGraph`).

    Input ``image``: (N, 3, H, W) float32, the frame resized by the test pipeline, normalised
    per the sidecar's ``normalisation`` and zero-padded (after normalisation) to a multiple of
    ``size_divisor``; N is dynamic, (H, W) is fixed to ``input_size`` (traced upsampling
    layers keep their export-time sizes), so frames of another aspect ratio must be padded to
    it. Output ``logits``: (N, K, H, W) class logits at the input's resolution. Cropping the
    padding, resizing to the frame and the arg-max stay in Python.

    Args:
        config, checkpoint: the mmseg model (random weights without a checkpoint).
        onnx_path: the ``.onnx`` to write.
        input_size: (H, W) of the input; default :func:`segmentation_input_size`.
        opset, tolerance: see :func:`export_module`.
    """
    model = load_library_model("mmseg", config, checkpoint)
    height, width = input_size or segmentation_input_size(model)
    graph = SegmentationGraph(model).eval()
    example = {"image": random_input((2, 3, height, width), 0)}
    parity = [
        {"image": random_input((batch, 3, height, width), batch)} for batch in PARITY_BATCH_SIZES
    ]
    preprocessor = model.data_preprocessor
    sidecar = dict(
        kind="segmentation",
        normalisation=dict(
            _image_normalisation(model),
            size_divisor=getattr(preprocessor, "size_divisor", None),
            pad_val=getattr(preprocessor, "pad_val", 0),
        ),
        input_size=[height, width],
        num_classes=int(getattr(model.decode_head, "num_classes", 0)) or None,
        align_corners=graph.align_corners,
        source=source_record(config, checkpoint),
    )
    return export_module(
        graph,
        example,
        onnx_path,
        ("logits",),
        {"image": {0: "batch"}},
        parity,
        sidecar,
        opset,
        tolerance,
    )


def pose_input_size(model: nn.Module) -> tuple[int, int]:
    """The (h, w) of the pose model's crops: its codec's ``input_size``, else the test
    pipeline's ``TopdownAffine``.

    Raises:
        OnnxExportError: neither is in the config.
    """
    decoder = getattr(getattr(model, "head", None), "decoder", None)
    size = getattr(decoder, "input_size", None)
    if size is None:
        for step in _pipeline(model):
            if str(step.get("type", "")).split(".")[-1] == "TopdownAffine":
                size = step.get("input_size")
    if size is None:
        raise OnnxExportError(
            "the pose config names no input_size (codec or TopdownAffine): give it "
            "(tools/deployment/export_onnx.py pose CONFIG --input-size H W)"
        )
    width, height = size
    return int(height), int(width)


def export_pose(
    config: str | os.PathLike,
    onnx_path: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    input_size: tuple[int, int] | None = None,
    opset: int = OPSET,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportResult:
    """Export an mmpose top-down pose network (:class:`PoseGraph`).

    Input ``crop``: (N, 3, h, w) float32, the person crop from ``TopdownAffine``, normalised
    per the sidecar; N is dynamic. Output ``heatmaps``: (N, K, h', w') for heatmap heads (the
    head's outputs ``output_0``, ``output_1`` ... for heads with several). Flip testing and the
    codec's decoding (arg-max, DARK refinement, back to image coordinates) stay in Python.

    Args:
        config, checkpoint: the mmpose model (random weights without a checkpoint).
        onnx_path: the ``.onnx`` to write.
        input_size: (h, w) of the crops; default :func:`pose_input_size`.
        opset, tolerance: see :func:`export_module`.
    """
    model = load_library_model("mmpose", config, checkpoint)
    height, width = input_size or pose_input_size(model)
    graph = PoseGraph(model).eval()
    example = {"crop": random_input((2, 3, height, width), 0)}
    parity = [
        {"crop": random_input((batch, 3, height, width), batch)} for batch in PARITY_BATCH_SIZES
    ]
    decoder = getattr(model.head, "decoder", None)
    sidecar = dict(
        kind="pose",
        normalisation=_image_normalisation(model),
        input_size=[height, width],
        codec=type(decoder).__name__ if decoder is not None else None,
        flip_test_in_config=bool((model.cfg.model.get("test_cfg") or {}).get("flip_test")),
        source=source_record(config, checkpoint),
    )
    return export_module(
        graph,
        example,
        onnx_path,
        ("heatmaps",),
        {"crop": {0: "batch"}},
        parity,
        sidecar,
        opset,
        tolerance,
    )


# -- bundles ----------------------------------------------------------------------------------


def export_bundle_models(
    bundle: str | os.PathLike,
    out_dir: str | os.PathLike,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    opset: int = OPSET,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, ExportResult]:
    """Export every network of a model bundle: ``classifier``, ``segmentation``, ``pose``.

    The bundle is verified first (:func:`gm_plugins.deploy.bundle.load_bundle`); each model is
    written to ``out_dir/<name>.onnx`` with its sidecar. A chain without a segmentation or
    pose step gives no such file.

    Args:
        bundle: a bundle folder or ``.zip``.
        out_dir: the folder to write to.
        input_shapes: classifier window shapes, when its config has no ``input_shapes``.
        opset, tolerance: see :func:`export_module`.

    Returns:
        ``{name: ExportResult}`` for each exported model.
    """
    loaded = load_bundle(bundle)
    out_dir = Path(out_dir)
    results = {
        "classifier": export_classifier(
            loaded.classifier_config,
            out_dir / "classifier.onnx",
            checkpoint=loaded.classifier_checkpoint,
            input_shapes=input_shapes,
            opset=opset,
            tolerance=tolerance,
            config_path=loaded.root / "classifier.py",
            class_names=loaded.class_names,
        )
    }
    exporters = {"segmentation": export_segmentation, "pose": export_pose}
    for step in loaded.preprocess_pipeline:
        name = MODEL_STEPS.get(step.get("type"))
        if name is None or not step.get("config"):
            continue
        results[name] = exporters[name](
            step["config"],
            out_dir / f"{name}.onnx",
            checkpoint=step.get("checkpoint"),
            opset=opset,
            tolerance=tolerance,
        )
    return results
