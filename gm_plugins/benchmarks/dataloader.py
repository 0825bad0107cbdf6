"""Data-loading speed: windows/s of GMDataset + LoadCachedWindow, and whether it starves training.

The loader reads cached windows (memory-mapped ``.npy``), dequantises the flow and collates a
batch; its speed does not depend on what the pixels show, so a *timing cache* of random pixels
at the config's size (written once, reused) stands in for a preprocessed dataset.
:func:`time_loader` iterates the config's dataloader with a given number of workers;
:func:`time_training` runs a few real training iterations through mmengine's runner and reads the
data time and step time that its logger recorded (``vis_data/scalars.json``), so the ratio is the
one a user sees in their own training logs (:func:`data_time_ratio` reads any work dir).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config

from gm_plugins.datasets.cache import is_cached, write_cached_video
from gm_plugins.datasets.gm_dataset import GM_CLASSES

__all__ = [
    "data_time_ratio",
    "loader_config",
    "time_loader",
    "time_training",
    "write_timing_cache",
]


def write_timing_cache(
    root: str | os.PathLike,
    num_subjects: int = 8,
    seconds: float = 60.0,
    size: int = 224,
    sample_fps: float = 6.0,
    fps: float = 30.0,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write (or reuse) a cache of random pixels shaped like a preprocessed dataset.

    Args:
        root: folder for ``subjects.csv`` and ``cache/``.
        num_subjects: infants, labels cycling through the classes.
        seconds: video length; ``seconds * sample_fps`` cached frames per infant.
        size: S, the side of the cached frames (the config's window size).

    Returns:
        (ann_file, cache_root). Entries already written with these settings are kept.
    """
    root = Path(root)
    cache_root = root / "cache"
    num_frames = round(seconds * sample_fps)
    if num_frames < 2:
        raise ValueError(f"seconds * sample_fps must give >= 2 frames, got {num_frames}")
    rng = np.random.default_rng(seed)
    rows = []
    step = fps / sample_fps
    for index in range(num_subjects):
        subject_id = f"t{index:04d}"
        label = GM_CLASSES[index % len(GM_CLASSES)]
        # No video: the dataset reads the cache only (the path just names where one would be).
        video = f"videos/{subject_id}.mp4"
        rows.append(dict(subject_id=subject_id, label=label, environment="", video=video))
        if is_cached(cache_root, subject_id) and _entry_shape(cache_root, subject_id) == (
            num_frames,
            size,
        ):
            continue
        frames = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
        flow = rng.integers(0, 256, (num_frames - 1, size, size, 2), dtype=np.uint8)
        frame_indices = [round(i * step) for i in range(num_frames)]
        meta = dict(
            video=video,
            frame_indices=frame_indices,
            timestamps=[i / sample_fps for i in range(num_frames)],
            fps=fps,
            sample_fps=sample_fps,
            out_size=size,
            label=label,
            quality=dict(fallback=None),
        )
        matrices = np.tile(np.eye(2, 3, dtype=np.float32), (num_frames, 1, 1))
        write_cached_video(cache_root, subject_id, frames, flow, matrices, meta)
    ann_file = root / "subjects.csv"
    staging = ann_file.with_name(ann_file.name + ".tmp")
    with open(staging, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["subject_id", "label", "environment", "video"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(staging, ann_file)
    return ann_file, cache_root


def _entry_shape(cache_root: Path, subject_id: str) -> tuple[int, int]:
    frames = np.load(cache_root / subject_id / "frames.npy", mmap_mode="r")
    return int(frames.shape[0]), int(frames.shape[1])


def loader_config(
    cfg: Config,
    ann_file: str | os.PathLike,
    cache_root: str | os.PathLike,
    num_workers: int,
    batch_size: int | None = None,
    which: str = "train_dataloader",
) -> dict:
    """The config's dataloader pointed at a cache, with every infant and ``num_workers``."""
    loader = copy.deepcopy(cfg.to_dict()[which])
    loader["dataset"].update(
        ann_file=str(ann_file), data_root="", cache_root=str(cache_root), split="all"
    )
    loader["num_workers"] = num_workers
    loader["persistent_workers"] = num_workers > 0
    if batch_size is not None:
        loader["batch_size"] = batch_size
    return loader


def time_loader(loader_cfg: dict, epochs: int = 2, seed: int = 0) -> dict:
    """Iterate a dataloader; the first epoch warms up (worker start, page cache), later ones count.

    Returns:
        dict with ``windows_per_s`` (timed epochs), ``windows``, ``seconds``,
        ``first_epoch_s`` (including worker start-up) and ``mib_per_window`` (collated tensors).
    """
    from mmengine.runner import Runner

    from gm_plugins.compat import library_scope

    with library_scope("mmaction"):
        loader = Runner.build_dataloader(copy.deepcopy(loader_cfg), seed=seed)
    timed_windows, timed_seconds, first_epoch_s, nbytes = 0, 0.0, 0.0, 0
    for epoch in range(max(2, epochs)):
        start = time.perf_counter()
        windows = 0
        for batch in loader:
            windows += len(batch["data_samples"])
            if epoch == 0 and not nbytes:
                nbytes = sum(
                    sum(t.numel() * t.element_size() for t in tensors)
                    for tensors in batch["inputs"].values()
                ) / len(batch["data_samples"])
        elapsed = time.perf_counter() - start
        if epoch == 0:
            first_epoch_s = elapsed
        else:
            timed_windows += windows
            timed_seconds += elapsed
    return dict(
        windows_per_s=timed_windows / timed_seconds,
        windows=timed_windows,
        seconds=timed_seconds,
        first_epoch_s=first_epoch_s,
        mib_per_window=nbytes / 2**20,
    )


def data_time_ratio(work_dir: str | os.PathLike, skip: int = 1) -> dict:
    """Median data time, step time and their ratio from a run's mmengine logs.

    Reads the newest ``<work_dir>/<timestamp>/vis_data/scalars.json`` (written by mmengine's
    ``LocalVisBackend``; each training log line holds ``data_time`` and ``time``, the seconds a
    step waited for its batch and the whole step). The first ``skip`` logged lines (worker
    start-up, first-step allocations) are left out.
    """
    logs = sorted(Path(work_dir).glob("*/vis_data/scalars.json"))
    if not logs:
        raise FileNotFoundError(
            f"no */vis_data/scalars.json under {work_dir}: was it trained with mmengine's "
            "LocalVisBackend (configs/_base_/default_runtime.py)?"
        )
    steps = []
    for line in logs[-1].read_text().splitlines():
        record = json.loads(line)
        if "data_time" in record and "time" in record and "loss" in record:
            steps.append((float(record["data_time"]), float(record["time"])))
    steps = steps[skip:] or steps
    if not steps:
        raise ValueError(f"{logs[-1]} holds no training lines with data_time and time")
    data_time = statistics.median(s[0] for s in steps)
    step_time = statistics.median(s[1] for s in steps)
    return dict(
        data_time=data_time,
        step_time=step_time,
        ratio=data_time / step_time,
        logged_steps=len(steps),
        log=str(logs[-1]),
    )


def time_training(
    cfg: Config,
    ann_file: str | os.PathLike,
    cache_root: str | os.PathLike,
    num_workers: int,
    batch_size: int,
    iters: int,
    work_dir: str | os.PathLike,
) -> dict:
    """Train the config's model for ``iters`` iterations on the cache and read its logs.

    Every iteration is logged (interval 1); no validation, no checkpoint. Returns
    :func:`data_time_ratio` of the run, plus ``samples_per_s`` (batch / median step time).
    """
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg)
    cfg.train_dataloader = loader_config(cfg, ann_file, cache_root, num_workers, batch_size)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = None
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=1, ignore_last=False)
    cfg.default_hooks.checkpoint = None
    cfg.log_processor = dict(type="LogProcessor", window_size=1, by_epoch=False)
    cfg.work_dir = str(work_dir)
    cfg.launcher = "none"
    runner = Runner.from_cfg(cfg)
    runner.train()
    result = data_time_ratio(work_dir)
    result["samples_per_s"] = batch_size / result["step_time"]
    result["torch_threads"] = torch.get_num_threads()
    return result
