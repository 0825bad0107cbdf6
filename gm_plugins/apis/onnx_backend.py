"""Run an exported classifier with ONNX Runtime instead of PyTorch.

:class:`OnnxClassifier` loads ``classifier.onnx`` with its sidecar (written by
:func:`gm_plugins.deploy.onnx_export.export_classifier`) and runs it on the normalised stream
tensors, or, through :meth:`OnnxClassifier.test_step`, on batches in the packed format the
classifier's test pipeline gives (it normalises them as ``TwoStreamDataPreprocessor`` does).
``test_step`` returns data samples with ``pred_score`` and ``pred_label`` as the recognizer's
does, so :func:`with_onnx_classifier` can put it in place of the recognizer of a
:class:`~gm_plugins.apis.inference.GMModel`::

    model = with_onnx_classifier(init_gm_model("work_dirs/demo/bundle"), "onnx/classifier.onnx")
    results = GMInferencer(model)("infant.mp4")

The preprocessing chain runs its pose model in PyTorch, and its segmentation model too unless
``BackgroundRemoval(backend='onnxruntime')`` (``init_gm_model(segmentation_backend=...)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from gm_plugins.runtime.onnx import (
    OnnxModelError,
    read_sidecar,
)

if TYPE_CHECKING:
    from .inference import GMModel


class OnnxClassifier:
    """An exported classifier run by ONNX Runtime on the CPU.

    Args:
        onnx_path: ``classifier.onnx`` written by ``tools/deployment/export_onnx.py``.
        num_threads: ONNX Runtime intra-op threads (None: its default, all cores).
        verify: check the file's sha256 against the sidecar.

    Attributes:
        streams: the inputs in order, e.g. ``('rgb', 'flow')``.
        input_shapes: one window's shape per stream, ``{stream: (T or L, C, H, W)}``.
        num_classes: K.
        sidecar: the sidecar's content.
    """

    def __init__(
        self, onnx_path: str | os.PathLike, num_threads: int | None = None, verify: bool = True
    ) -> None:
        import onnxruntime as ort

        from ..models.data_preprocessors import TwoStreamDataPreprocessor

        self.onnx_path = Path(onnx_path)
        self.sidecar = read_sidecar(self.onnx_path, verify=verify)
        if self.sidecar.get("kind") != "classifier":
            raise OnnxModelError(
                f"{self.onnx_path} holds a {self.sidecar.get('kind')} model, not a classifier"
            )
        self.streams = tuple(self.sidecar["streams"])
        self.input_shapes = {
            stream: tuple(shape) for stream, shape in self.sidecar["input_shapes"].items()
        }
        self.num_classes = int(self.sidecar["num_classes"])
        self.pred_score = self.sidecar.get("pred_score", "probs")
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.fspath(self.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        normalisation = self.sidecar["normalisation"]
        kwargs = {}
        for stream, values in normalisation.items():
            kwargs[f"{stream}_mean"] = values["mean"]
            kwargs[f"{stream}_std"] = values["std"]
        self.data_preprocessor = TwoStreamDataPreprocessor(flip_prob=0.0, **kwargs).eval()

    def __call__(self, **streams: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """Class scores of normalised stream tensors.

        Args:
            streams: ``rgb`` (N, T, 3, H, W) and/or ``flow`` (N, L, 2, H, W), float32,
                normalised (see the sidecar), one per entry of :attr:`streams`.

        Returns:
            ``dict(logits=(N, K), probs=(N, K))`` float32 arrays.

        Raises:
            ValueError: a stream is missing or has another shape than the export's.
        """
        missing = [stream for stream in self.streams if stream not in streams]
        unknown = sorted(set(streams) - set(self.streams))
        if missing or unknown:
            raise ValueError(
                f"{self.onnx_path.name} takes the streams {list(self.streams)}; got "
                f"{sorted(streams)}"
            )
        feed = {}
        for stream in self.streams:
            value = streams[stream]
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
            array = np.ascontiguousarray(array, dtype=np.float32)
            expected = self.input_shapes[stream]
            if array.ndim != 5 or tuple(array.shape[1:]) != expected:
                raise ValueError(
                    f"{stream} input of shape {tuple(array.shape)}, but {self.onnx_path.name} "
                    f"was exported for (N, {', '.join(map(str, expected))}); export it again "
                    "with the window size you need "
                    "(tools/deployment/export_onnx.py recognizer --size ...)"
                )
            feed[stream] = array
        logits, probs = self.session.run(["logits", "probs"], feed)
        return dict(logits=logits, probs=probs)

    def test_step(self, data: Mapping) -> list:
        """Classify a packed batch like ``recognizer.test_step``.

        Args:
            data: ``dict(inputs=dict(rgb=[(T, 3, H, W) uint8, ...], flow=[(L, 2, H, W), ...]),
                data_samples=[ActionDataSample, ...])`` as ``pseudo_collate`` gives it.

        Returns:
            The data samples (new ones when none are given) with ``pred_score`` (K,) set as
            the recognizer sets it (probabilities when its head averages them, else logits)
            and ``pred_label``.
        """
        from mmaction.structures import ActionDataSample

        with torch.no_grad():
            batch = self.data_preprocessor(dict(data), training=False)
        outputs = self(**{stream: batch["inputs"][stream] for stream in self.streams})
        scores = torch.from_numpy(outputs[self.pred_score])
        samples = batch.get("data_samples") or [ActionDataSample() for _ in range(len(scores))]
        for sample, score in zip(samples, scores, strict=True):
            sample.set_pred_score(score)
            sample.set_pred_label(score.argmax(dim=-1, keepdim=True))
        return samples


def with_onnx_classifier(
    model: GMModel, onnx_path: str | os.PathLike, num_threads: int | None = None
) -> GMModel:
    """A copy of a :class:`~gm_plugins.apis.inference.GMModel` whose classifier runs in ONNX
    Runtime; ``GMInferencer`` then uses it unchanged.

    Raises:
        OnnxModelError: the ONNX classifier has another number of classes than the model.
    """
    classifier = OnnxClassifier(onnx_path, num_threads=num_threads)
    if classifier.num_classes != len(model.class_names):
        raise OnnxModelError(
            f"{onnx_path} scores {classifier.num_classes} classes but the model has "
            f"{len(model.class_names)} ({', '.join(model.class_names)}): export this model's "
            "classifier"
        )
    return dataclasses.replace(model, recognizer=classifier)
