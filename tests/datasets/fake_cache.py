"""Write a tiny subjects.csv and preprocessing cache, for dataset tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from gm_plugins.datasets.cache import quantise_flow, write_cached_video

LABELS = ("WMs", "FMs", "PR")


def write_fake_dataset(
    root: Path, per_class: int = 2, num_frames: int = 60, fps: float = 10.0, size: int = 16
) -> tuple[Path, Path]:
    """subjects.csv under ``root/data`` and a cache under ``root/cache`` (every 2nd frame).

    Cached frame ``i`` of subject ``k`` is filled with the value ``k * 10 + i % 10`` and its
    flow is a constant ``(label + 1, -1)`` pixels, so tests can tell what was read.
    """
    data, cache = root / "data", root / "cache"
    data.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(3 * per_class):
        subject_id, label = f"s{k:03d}", k % 3
        rows.append(
            dict(
                subject_id=subject_id,
                label=LABELS[label],
                environment="sheet",
                video=f"videos/{subject_id}.mp4",
            )
        )
        indices = np.arange(0, num_frames, 2)
        frames = np.zeros((len(indices), size, size, 3), np.uint8)
        frames[:] = (k * 10 + np.arange(len(indices)) % 10)[:, None, None, None]
        flow = np.zeros((len(indices) - 1, size, size, 2), np.float32)
        flow[..., 0], flow[..., 1] = label + 1, -1
        meta = dict(
            frame_indices=indices.tolist(),
            fps=fps,
            total_frames=num_frames,
            frame_step=2,
            out_size=size,
        )
        write_cached_video(
            cache,
            subject_id,
            frames,
            quantise_flow(flow, 4.0),
            np.tile(np.eye(2, 3, dtype=np.float32), (len(indices), 1, 1)),
            meta,
        )
    with open(data / "subjects.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return data, cache
