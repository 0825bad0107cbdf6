"""ONNX Runtime sessions, the export-with-parity-check every ONNX file goes through, its JSON
sidecar, and the cache of segmentation models preprocessing exports on first use.

Used by the preprocessing chain (``BackgroundRemoval(backend='onnxruntime')``), by the
deployment exports (:mod:`gm_plugins.deploy.onnx_export`) and by the inference API's ONNX
classifier (:mod:`gm_plugins.apis.onnx_backend`) alike.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gm_plugins.utils.io import atomic_path, write_json_atomic
from gm_plugins.utils.zoo import sha256_of

#: The format of the JSON sidecar every exported ONNX file gets.
SIDECAR_FORMAT = "gm_plugins-onnx/1"


def sidecar_path_of(onnx_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


class OnnxModelError(ValueError):
    """An ONNX model or its sidecar that cannot be used (missing, changed, of another kind)."""


def read_sidecar(onnx_path: str | os.PathLike, verify: bool = True) -> dict:
    """The JSON sidecar of ``model.onnx`` (``model.json``), checked against the ONNX file.

    Args:
        onnx_path: the ONNX file.
        verify: compare the file's sha256 with the sidecar's.

    Raises:
        OnnxModelError: a missing file or sidecar, another sidecar format, or a sha256
            mismatch.
    """
    onnx_path = Path(onnx_path)
    sidecar_path = sidecar_path_of(onnx_path)
    if not onnx_path.is_file():
        raise OnnxModelError(
            f"ONNX model {onnx_path} does not exist: write it with tools/deployment/export_onnx.py"
        )
    if not sidecar_path.is_file():
        raise OnnxModelError(
            f"{onnx_path} has no sidecar {sidecar_path}: export it again with "
            "tools/deployment/export_onnx.py, which writes both"
        )
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except json.JSONDecodeError as error:
        raise OnnxModelError(f"{sidecar_path} is not valid JSON ({error})") from error
    if sidecar.get("format") != SIDECAR_FORMAT:
        raise OnnxModelError(
            f"{sidecar_path}: format {sidecar.get('format')!r}, expected {SIDECAR_FORMAT!r}; "
            "export the model again with tools/deployment/export_onnx.py"
        )
    if verify and sidecar.get("onnx_sha256") != sha256_of(onnx_path):
        raise OnnxModelError(
            f"{onnx_path} differs from the file its sidecar describes (sha256 mismatch): it was "
            "changed or replaced; export it again with tools/deployment/export_onnx.py"
        )
    return sidecar


#: The ONNX opset the exports use (supported by onnxruntime >= 1.12).
OPSET = 17


#: Largest allowed |ONNX Runtime - PyTorch| relative to max(1, largest |PyTorch output|).
PARITY_TOLERANCE = 1e-4


#: Batch sizes of the parity check right after export (the batch axis is dynamic).
PARITY_BATCH_SIZES = (1, 3)


class OnnxExportError(RuntimeError):
    """A model cannot be exported (wrong kind of config, unknown input size ...)."""


class ParityError(OnnxExportError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


@dataclass
class ExportResult:
    """What one export wrote and how closely ONNX Runtime matched PyTorch.

    Attributes:
        onnx_path: the ONNX file.
        sidecar_path: its JSON sidecar.
        max_abs_diff: the largest |ONNX Runtime - PyTorch| over all parity inputs and outputs.
        scale: the largest |PyTorch output| over the same.
        sidecar: the sidecar's content.
    """

    onnx_path: Path
    sidecar_path: Path
    max_abs_diff: float
    scale: float
    sidecar: dict = field(repr=False, default_factory=dict)


class SegmentationGraph(nn.Module):
    """An mmseg ``EncoderDecoder``'s tensor path, with the logits resized to the input.

    Shapes:
        image (N, 3, H, W) float32, normalised as the model's ``SegDataPreProcessor`` gives it
        (padded to its size divisor) -> logits (N, K, H, W), bilinearly resized from the
        decode head's resolution as mmseg's ``whole`` inference does.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.align_corners = bool(getattr(segmentor, "align_corners", False))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.segmentor._forward(image)
        return nn.functional.interpolate(
            logits, size=image.shape[-2:], mode="bilinear", align_corners=self.align_corners
        )


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Hide the TorchScript exporter's deprecation notice and its tracer warnings.

    Tracer warnings flag Python branches on tensor values, which the trace fixes to the export
    input's case; the parity check on other batch sizes (and image sizes) catches a wrong one.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        yield


def ort_session(path: str | os.PathLike, num_threads: int | None = None):
    """An ONNX Runtime CPU session of ``path`` (``num_threads`` intra-op threads, else ORT's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def _as_tuple(output) -> tuple[torch.Tensor, ...]:
    return tuple(output) if isinstance(output, (tuple, list)) else (output,)


def check_parity(
    onnx_path: str | os.PathLike,
    module: nn.Module,
    inputs: Sequence[dict[str, torch.Tensor]],
    tolerance: float = PARITY_TOLERANCE,
) -> tuple[float, float]:
    """Run ``module`` and the ONNX model on each input dict; return (max |diff|, scale).

    Args:
        onnx_path: the exported model.
        module: the PyTorch module it was exported from (eval mode).
        inputs: dicts of named input tensors, in the ONNX model's input order.
        tolerance: allowed max |diff| relative to ``max(1, scale)``.

    Raises:
        ParityError: an output differs in shape, or by more than the tolerance.
    """
    session = ort_session(onnx_path)
    output_names = [output.name for output in session.get_outputs()]
    max_diff, scale = 0.0, 0.0
    for feed in inputs:
        with torch.no_grad():
            expected = _as_tuple(module(*feed.values()))
        try:
            got = session.run(None, {name: tensor.numpy() for name, tensor in feed.items()})
        except Exception as error:  # onnxruntime raises its own exception types
            shapes = {key: tuple(tensor.shape) for key, tensor in feed.items()}
            raise ParityError(
                f"{onnx_path}: ONNX Runtime failed on inputs {shapes} where PyTorch runs "
                f"({type(error).__name__}: {error}); the ONNX file was not kept"
            ) from error
        if len(got) != len(expected):
            raise ParityError(
                f"{onnx_path}: ONNX Runtime gives {len(got)} outputs, PyTorch {len(expected)}"
            )
        for name, reference, value in zip(output_names, expected, got, strict=True):
            reference = reference.numpy()
            if reference.shape != value.shape:
                shapes = {key: tuple(tensor.shape) for key, tensor in feed.items()}
                raise ParityError(
                    f"{onnx_path}: output {name!r} has shape {value.shape} in ONNX Runtime but "
                    f"{reference.shape} in PyTorch for inputs {shapes}"
                )
            max_diff = max(max_diff, float(np.max(np.abs(value - reference), initial=0.0)))
            scale = max(scale, float(np.max(np.abs(reference), initial=0.0)))
    if not math.isfinite(max_diff) or max_diff > tolerance * max(1.0, scale):
        raise ParityError(
            f"{onnx_path}: ONNX Runtime and PyTorch outputs differ by up to {max_diff:.3g} "
            f"(largest output {scale:.3g}, allowed {tolerance:g} x max(1, that)); the ONNX file "
            "was not kept. An operator may be traced for the export input's case only: export "
            "with another batch size or input size, or report the model."
        )
    return max_diff, scale


def _describe(names: Sequence[str], tensors: Sequence[torch.Tensor], dynamic: dict) -> list[dict]:
    described = []
    for name, tensor in zip(names, tensors, strict=True):
        axes = dynamic.get(name, {})
        shape = [axes.get(axis, int(size)) for axis, size in enumerate(tensor.shape)]
        described.append(dict(name=name, shape=shape, dtype=str(tensor.dtype).split(".")[-1]))
    return described


def export_module(
    module: nn.Module,
    example: dict[str, torch.Tensor],
    onnx_path: str | os.PathLike,
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    parity_inputs: Sequence[dict[str, torch.Tensor]],
    sidecar: dict,
    opset: int = OPSET,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportResult:
    """Export ``module`` on ``example``, check parity on ``parity_inputs``, write the files.

    The ONNX file is written to a temporary sibling, checked (``onnx.checker`` and the
    ONNX Runtime parity check) and only then renamed into place; the sidecar
    (``<stem>.json``) follows, with ``sidecar``'s entries plus inputs, outputs, opset,
    versions, parity figures and the ONNX file's sha256.

    Args:
        module: the graph to export, in eval mode.
        example: named example inputs (batch axis first) the trace runs on.
        onnx_path: where the ``.onnx`` goes.
        output_names: names of the module's outputs, in order.
        dynamic_axes: ``{input or output name: {axis: symbolic name}}``.
        parity_inputs: named input dicts for :func:`check_parity`.
        sidecar: extra sidecar entries (kind, normalisation, source ...).
        opset: the ONNX opset.
        tolerance: see :func:`check_parity`.

    Raises:
        ParityError: ONNX Runtime disagrees with PyTorch (no file is written).
    """
    import onnx
    import onnxruntime

    onnx_path = Path(onnx_path)
    module = module.eval()
    with torch.no_grad():
        example_outputs = _as_tuple(module(*example.values()))
    if len(example_outputs) != len(output_names):
        output_names = [f"output_{index}" for index in range(len(example_outputs))]
    dynamic = {name: dict(axes) for name, axes in dynamic_axes.items()}
    for name in output_names:
        dynamic.setdefault(name, {0: "batch"})
    started = time.perf_counter()
    with atomic_path(onnx_path) as temporary:
        with _quiet_tracing(), torch.no_grad():
            try:
                torch.onnx.export(
                    module,
                    tuple(example.values()),
                    os.fspath(temporary),
                    dynamo=False,
                    opset_version=opset,
                    input_names=list(example),
                    output_names=list(output_names),
                    dynamic_axes=dynamic,
                    do_constant_folding=True,
                )
            except Exception as error:
                summary = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise OnnxExportError(
                    f"torch.onnx.export cannot export {type(module).__name__} for {onnx_path} "
                    f"({type(error).__name__}: {summary[:500]}); the model uses an operator or a "
                    "shape-dependent step that the TorchScript exporter cannot express"
                ) from error
        onnx.checker.check_model(os.fspath(temporary))
        max_diff, scale = check_parity(temporary, module, parity_inputs, tolerance)
        onnx_sha256 = sha256_of(temporary)
    seconds = time.perf_counter() - started
    content = dict(
        format=SIDECAR_FORMAT,
        **sidecar,
        onnx=onnx_path.name,
        onnx_sha256=onnx_sha256,
        inputs=_describe(list(example), list(example.values()), dynamic),
        outputs=_describe(list(output_names), example_outputs, dynamic),
        opset=opset,
        exporter="torch.onnx.export (TorchScript-based, dynamo=False)",
        versions=dict(
            torch=torch.__version__, onnx=onnx.__version__, onnxruntime=onnxruntime.__version__
        ),
        parity=dict(
            max_abs_diff=max_diff,
            scale=scale,
            tolerance=tolerance,
            inputs=[{k: list(v.shape) for k, v in feed.items()} for feed in parity_inputs],
        ),
        export_seconds=round(seconds, 2),
    )
    sidecar_path = sidecar_path_of(onnx_path)
    write_json_atomic(sidecar_path, content)
    return ExportResult(onnx_path, sidecar_path, max_diff, scale, content)


def random_input(shape: Sequence[int], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def onnx_cache_dir() -> Path:
    """Where preprocessing keeps the ONNX models it exports on first use.

    ``$GM_PLUGINS_ONNX_CACHE`` if set, else ``~/.cache/gm_plugins/onnx``.
    """
    folder = os.environ.get("GM_PLUGINS_ONNX_CACHE")
    return Path(folder) if folder else Path.home() / ".cache" / "gm_plugins" / "onnx"


def segmentation_onnx(
    model: nn.Module,
    input_size: tuple[int, int],
    source_key: str | None,
    cache_dir: str | os.PathLike | None = None,
    tolerance: float = PARITY_TOLERANCE,
) -> Path:
    """The ONNX file of a loaded segmentation model at one input size, exported once.

    The file is ``segmentation-<source_key>-<H>x<W>.onnx`` in ``cache_dir`` (default
    :func:`onnx_cache_dir`) and is reused while its sidecar's sha256 matches; ``source_key``
    names the weights (say, the sha256 of the config and checkpoint files), so a retrained
    checkpoint gets a new file. Without a key (random weights, which differ per build) the
    export goes to a private temporary folder. Every export passes the parity check of
    :func:`export_module` first.

    Args:
        model: an mmseg ``EncoderDecoder`` in eval mode (a BatchNorm-fused copy is fine).
        input_size: (H, W) of the normalised, padded network input.
    """
    height, width = (int(side) for side in input_size)
    if source_key is None:
        folder = Path(tempfile.mkdtemp(prefix="gm_plugins_onnx_"))
        name = "segmentation"
    else:
        folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
        name = f"segmentation-{source_key[:24]}"
    path = folder / f"{name}-{height}x{width}.onnx"
    if path.is_file():
        try:
            read_sidecar(path)
            return path
        except OnnxModelError:
            pass  # a half-written or changed file: export again (atomic replace)
    folder.mkdir(parents=True, exist_ok=True)
    shape = (height, width)
    export_module(
        SegmentationGraph(model).eval(),
        {"image": random_input((2, 3, *shape), 0)},
        path,
        ("logits",),
        {"image": {0: "batch"}},
        [{"image": random_input((batch, 3, *shape), batch)} for batch in PARITY_BATCH_SIZES],
        dict(kind="segmentation", input_size=[height, width], source_key=source_key),
        tolerance=tolerance,
    )
    return path
