"""Cost and speed of one backbone config, for the backbone leaderboard.

Parameters and FLOPs of one window at the config's ``model.input_shapes``, training and
inference speed on random windows, and ``W/figures/<config>.json``, which keeps them with what
they were measured with (:mod:`gm_plugins.experiments.backbone_benchmark`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config

from gm_plugins.benchmarks.inputs import random_windows
from gm_plugins.benchmarks.timing import items_per_second
from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.experiments import results_store as rs
from gm_plugins.utils.io import write_json_atomic


@dataclass(frozen=True)
class SpeedSettings:
    """How speeds are timed: ``repeats`` timings of ``steps`` steps after ``warmup`` steps."""

    threads: int = 2
    warmup: int = 2
    steps: int = 5
    repeats: int = 3


# -- cost ------------------------------------------------------------------------------------


def describe_backbone(backbone: Mapping | None) -> str:
    """A backbone config in a few words: ``ResNet-18 (3 stages)``, ``X3D``, ``—`` for none."""
    if not backbone:
        return "—"
    text = str(backbone.get("type", "?"))
    if backbone.get("depth") is not None:
        text += f"-{backbone['depth']}"
    if backbone.get("num_stages") is not None:
        text += f" ({backbone['num_stages']} stages)"
    return text


def describe_backbones(cfg: Config) -> dict[str, str]:
    """Each stream's backbone (``rgb``, ``flow``) as :func:`describe_backbone` puts it."""
    return {s: describe_backbone(cfg.model.get(f"{s}_backbone")) for s in ("rgb", "flow")}


def build_recognizer(cfg: Config, config: str) -> torch.nn.Module:
    """The config's recognizer on the CPU, in eval mode, with the shapes of one window.

    Raises:
        ValueError: the model has no ``input_shapes`` (a two-stream recognizer gets them from
            ``model.input_shapes``), naming the config and the fix.
    """
    from gm_plugins.models.loading import load_recognizer

    torch.manual_seed(0)
    model = load_recognizer(copy.deepcopy(cfg))
    if not getattr(model, "input_shapes", None):
        raise ValueError(
            f"{config}: the model has no input shapes to measure it at; give the "
            "MultiStreamRecognizer model.input_shapes=dict(rgb=(T, 3, H, W), flow=(L, 2, H, W)), "
            "as configs/_base_/models/two-stream_r18-3stage-concat-fusion.py does"
        )
    return model


class WindowClassifier(torch.nn.Module):
    """A recognizer as a module of tensors, what a FLOP counter traces: one (N, T, C, H, W)
    tensor per stream, in the recognizer's stream order, in; class scores (N, K) out."""

    def __init__(self, recognizer: torch.nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer
        self.streams = tuple(recognizer.stream_layouts)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(self.streams, inputs, strict=True))
        return self.recognizer.extract_feat(batch, stage="head")[0]


def count_flops(recognizer: torch.nn.Module) -> tuple[int, list[str]]:
    """FLOPs of one window at ``recognizer.input_shapes`` and the operators left uncounted.

    mmengine's FlopAnalyzer counts one multiply-add as one FLOP (convolutions, linear layers,
    normalisation); element-wise operators and pooling are listed as uncounted.
    """
    from mmengine.analysis import FlopAnalyzer

    module = WindowClassifier(recognizer).eval()
    inputs = tuple(torch.zeros(1, *recognizer.input_shapes[s]) for s in module.streams)
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = int(analyzer.total())
    return flops, sorted(analyzer.unsupported_ops())


# -- speed -----------------------------------------------------------------------------------


def measure_speed(
    recognizer: torch.nn.Module, train_batch: int, test_batch: int, speed: SpeedSettings
) -> dict:
    """Training samples/s and inference windows/s of ``recognizer`` on random windows.

    malloc is set as ``tools/train.py`` sets it, process-wide
    (:func:`~gm_plugins.utils.allocator.keep_freed_memory`).
    """
    from mmengine.optim import OptimWrapper

    from gm_plugins.utils.allocator import keep_freed_memory

    keep_freed_memory()

    classes = recognizer.cls_head.num_classes
    train_data = random_windows(recognizer.input_shapes, train_batch, classes, seed=0)
    test_data = random_windows(recognizer.input_shapes, test_batch, classes, seed=1)
    optim_wrapper = OptimWrapper(torch.optim.AdamW(recognizer.parameters(), lr=1e-4))
    recognizer.train()
    train = items_per_second(
        lambda: recognizer.train_step(train_data, optim_wrapper),
        train_batch, speed.steps, speed.warmup, speed.repeats,
    )  # fmt: skip
    recognizer.eval()
    with torch.no_grad():
        test = items_per_second(
            lambda: recognizer.test_step(test_data),
            test_batch, speed.steps, speed.warmup, speed.repeats,
        )  # fmt: skip
    return dict(train_samples_per_s=round(train, 4), inference_windows_per_s=round(test, 4))


def cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    return rs.processor()["name"]


# -- figures of one config -------------------------------------------------------------------


def measurement_key(cfg: Config, speed: SpeedSettings) -> dict:
    """What a config's figures depend on: its model, batch sizes and the timing settings."""
    key = dict(
        model=cfg.model.to_dict(),
        train_batch_size=cfg.train_dataloader.batch_size,
        test_batch_size=cfg.test_dataloader.batch_size,
        threads=speed.threads,
        warmup=speed.warmup,
        steps=speed.steps,
        repeats=speed.repeats,
    )
    return json.loads(json.dumps(key, sort_keys=True, default=str))  # as it reads back


def measure_config(cfg: Config, config: str, speed: SpeedSettings) -> dict:
    """Parameters, FLOPs per window and speeds of one config (``speed.threads`` torch threads)."""
    key = measurement_key(cfg, speed)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(speed.threads)
    try:
        recognizer = build_recognizer(cfg, config)
        flops, uncounted = count_flops(recognizer)
        parameters = sum(p.numel() for p in recognizer.parameters())
        rates = measure_speed(recognizer, key["train_batch_size"], key["test_batch_size"], speed)
    finally:
        torch.set_num_threads(threads)
    return dict(
        config=config,
        measured_with=key,
        input_shapes={s: list(shape) for s, shape in recognizer.input_shapes.items()},
        parameters=parameters,
        flops_per_window=flops,
        flops_uncounted_operators=uncounted,
        **rates,
        device=f"{cpu_name()}, torch {torch.__version__}, torch threads: {speed.threads}",
        seconds=round(time.perf_counter() - start, 1),
    )


def figures_file(work_dir: str | os.PathLike, config: str) -> Path:
    return Path(work_dir) / "figures" / f"{cv.config_name(config)}.json"


def load_or_measure(
    cfg: Config, config: str, work_dir: Path, speed: SpeedSettings
) -> tuple[dict, bool]:
    """The config's figures from ``work_dir/figures`` if measured with these settings, else
    measured now and saved; returns them and whether they were measured now."""
    path = figures_file(work_dir, config)
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("measured_with") == measurement_key(cfg, speed):
            return stored, False
        print(f"[{cv.config_name(config)}] {path} was measured with other settings: measuring "
              "again", flush=True)  # fmt: skip
    figures = measure_config(cfg, config, speed)
    write_json_atomic(path, figures)
    return figures, True
