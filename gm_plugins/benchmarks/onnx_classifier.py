"""Inference speed of a classifier's tensor path in PyTorch and in ONNX Runtime
(``tools/deployment/export_onnx.py benchmark``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from gm_plugins.benchmarks.timing import items_per_second
from gm_plugins.deploy.onnx_export import (
    ClassifierGraph,
    classifier_input_shapes,
    export_recognizer,
    load_classifier,
    source_record,
)
from gm_plugins.runtime.onnx import ort_session, random_input


def benchmark_classifier(
    config: str | os.PathLike,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 16,
    threads: int = 1,
    iters: int = 3,
    warmup: int = 1,
    work_dir: str | os.PathLike | None = None,
) -> dict:
    """Inference windows/s of a classifier's tensor path in PyTorch and in ONNX Runtime.

    The classifier (random weights) is exported into ``work_dir`` (a temporary folder by
    default); then PyTorch (:class:`ClassifierGraph`, no gradients) and ONNX Runtime run the
    same random normalised batch of ``batch_size`` windows, each on ``threads`` intra-op
    threads, ``warmup`` untimed batches first, then ``iters`` timed ones.

    Returns:
        dict with ``torch_windows_per_s``, ``onnxruntime_windows_per_s``, ``max_abs_diff`` and
        ``scale`` on the timed batch, ``threads``, ``batch_size``, ``input_shapes``,
        ``parameters`` and ``onnx_megabytes``.
    """
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with contextlib.ExitStack() as stack:
            if work_dir is None:
                work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gm_onnx_"))
            onnx_path = Path(work_dir) / "classifier.onnx"
            recognizer = load_classifier(config)
            shapes = classifier_input_shapes(recognizer, input_shapes)
            export_recognizer(recognizer, onnx_path, shapes, source_record(config, None))
            graph = ClassifierGraph(recognizer).eval()
            feed = {
                stream: random_input((batch_size, *shape), seed)
                for seed, (stream, shape) in enumerate(shapes.items())
            }
            session = ort_session(onnx_path, num_threads=threads)
            numpy_feed = {name: tensor.numpy() for name, tensor in feed.items()}
            with torch.no_grad():
                torch_rate = items_per_second(
                    lambda: graph(*feed.values()), batch_size, iters, warmup
                )
                expected = graph(*feed.values())[0].numpy()
            ort_rate = items_per_second(
                lambda: session.run(None, numpy_feed), batch_size, iters, warmup
            )
            got = session.run(["logits"], numpy_feed)[0]
            megabytes = onnx_path.stat().st_size / 2**20
    finally:
        torch.set_num_threads(saved_threads)
    return dict(
        torch_windows_per_s=torch_rate,
        onnxruntime_windows_per_s=ort_rate,
        max_abs_diff=float(np.max(np.abs(got - expected))),
        scale=float(np.max(np.abs(expected))),
        threads=threads,
        batch_size=batch_size,
        input_shapes={stream: list(shape) for stream, shape in shapes.items()},
        parameters=sum(p.numel() for p in recognizer.parameters()),
        onnx_megabytes=round(megabytes, 1),
    )
