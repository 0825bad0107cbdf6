"""The preprocessing cache: what ``tools/preprocess_videos.py`` writes and ``GMDataset`` reads.

Layout, one folder per video::

    CACHE/<subject_id>/frames.npy    uint8 (N, S, S, 3)  aligned, background-removed RGB frames
                      /flow.npy      uint8 (N-1, S, S, 2) flow from frame i to i+1, quantised
                      /matrices.npy  float32 (N, 2, 3)   source pixel -> aligned pixel, per frame
                      /keypoints.npy float32 (M, K, 3)   optional: pose estimates (x, y in aligned
                                                         pixels, score) on M cached frames
                      /meta.json     frame indices, fps, body frame, flow settings, fallbacks

``CACHE/preprocess_pipeline.json`` records the chain that wrote the cache, so a rerun with
another chain (say, an ablation's) cannot mix its videos into it.

The N cached frames are source frames ``frame_indices`` (every ``frame_step``-th frame), so
windows of any start stride and span can be cut later without preprocessing again. Flow is
stored as ``q = round((f / bound + 1) * 127.5)`` for ``f`` in pixels clipped to ``+-bound``;
:func:`dequantise_flow` returns it scaled to [-1, 1]. Flow channels are (x, y).

A video counts as done only when its folder holds ``meta.json``: folders are written under a
temporary name and renamed into place, so a killed run never leaves a half-written video
that looks finished.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAMES_FILE = "frames.npy"
FLOW_FILE = "flow.npy"
MATRICES_FILE = "matrices.npy"
KEYPOINTS_FILE = "keypoints.npy"
META_FILE = "meta.json"
PIPELINE_FILE = "preprocess_pipeline.json"


def quantise_flow(flow: np.ndarray, bound: float) -> np.ndarray:
    """Flow in pixels (..., 2) -> uint8, clipping to ``+-bound`` pixels."""
    scaled = np.clip(np.asarray(flow, np.float32) / bound, -1.0, 1.0)
    return np.round((scaled + 1.0) * 127.5).astype(np.uint8)


def dequantise_flow(quantised: np.ndarray) -> np.ndarray:
    """uint8 flow -> float32 in [-1, 1] (1 means ``bound`` pixels)."""
    return quantised.astype(np.float32) / 127.5 - 1.0


def claim_cache(cache_root: str | os.PathLike, pipeline: list[dict]) -> None:
    """Record the chain that writes ``cache_root``; refuse a cache written by another chain.

    Raises:
        ValueError: naming the cache and the steps that differ, with the fix.
    """
    root = Path(cache_root)
    record = root / PIPELINE_FILE
    wanted = json.loads(json.dumps(pipeline, default=str))  # tuples -> lists, as stored
    if record.is_file():
        stored = json.loads(record.read_text())
        if stored != wanted:
            raise ValueError(
                f"{root} was written by another preprocess_pipeline "
                f"({'; '.join(_differences(stored, wanted))}): use another --out for this "
                f"chain, or delete {root} to rebuild it"
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted, indent=1))
    os.replace(tmp, record)


def _differences(stored: list[dict], wanted: list[dict]) -> list[str]:
    """'step i (Type): key=old -> new' for every step that differs."""
    described = []
    for index, (old, new) in enumerate(itertools.zip_longest(stored, wanted, fillvalue={})):
        if old == new:
            continue
        if old.get("type") != new.get("type"):
            described.append(f"step {index}: {old.get('type')} -> {new.get('type')}")
            continue
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        changes = ", ".join(f"{k}={old.get(k)!r} -> {new.get(k)!r}" for k in keys)
        described.append(f"step {index} ({old['type']}): {changes}")
    return described


def is_cached(cache_root: str | os.PathLike, subject_id: str) -> bool:
    """Whether ``subject_id`` was completely written to the cache."""
    return (Path(cache_root) / subject_id / META_FILE).is_file()


def write_cached_video(
    cache_root: str | os.PathLike,
    subject_id: str,
    frames: np.ndarray,
    flow_quantised: np.ndarray,
    matrices: np.ndarray,
    meta: dict,
    keypoints: np.ndarray | None = None,
) -> Path:
    """Atomically write one video's cache folder and return its path.

    Args:
        frames: uint8 (N, S, S, 3) RGB.
        flow_quantised: uint8 (N-1, S, S, 2), see :func:`quantise_flow`.
        matrices: float32 (N, 2, 3).
        meta: JSON-serialisable; must hold ``frame_indices`` (N ints) and ``fps``, and
            ``keypoint_positions`` (M ints, positions in the N frames) with ``keypoints``.
        keypoints: optional float32 (M, K, 3) pose estimates (x, y, score) in aligned pixels.
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{subject_id}: frames must be (N, S, S, 3) uint8, got {frames.shape}")
    expected_flow = (frames.shape[0] - 1, *frames.shape[1:3], 2)
    if flow_quantised.shape != expected_flow or flow_quantised.dtype != np.uint8:
        raise ValueError(
            f"{subject_id}: flow must be uint8 {expected_flow}, got "
            f"{flow_quantised.dtype} {flow_quantised.shape}"
        )
    if len(meta.get("frame_indices", ())) != frames.shape[0] or "fps" not in meta:
        raise ValueError(f"{subject_id}: meta needs 'fps' and one frame index per cached frame")
    if keypoints is not None:
        positions = meta.get("keypoint_positions", ())
        if (
            np.ndim(keypoints) != 3
            or np.shape(keypoints)[-1] != 3
            or len(positions) != len(keypoints)
        ):
            raise ValueError(
                f"{subject_id}: keypoints must be (M, K, 3) with M keypoint_positions in meta, "
                f"got {np.shape(keypoints)} and {len(positions)} positions"
            )
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / subject_id
    staging = Path(tempfile.mkdtemp(prefix=f".{subject_id}.", dir=root))
    try:
        np.save(staging / FRAMES_FILE, frames)
        np.save(staging / FLOW_FILE, flow_quantised)
        np.save(staging / MATRICES_FILE, np.asarray(matrices, np.float32))
        if keypoints is not None:
            np.save(staging / KEYPOINTS_FILE, np.asarray(keypoints, np.float32))
        meta = dict(meta, subject_id=subject_id, num_frames=int(frames.shape[0]))
        (staging / META_FILE).write_text(json.dumps(meta, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


@dataclass
class CachedVideo:
    """One cached video, memory-mapped: slicing reads only the frames asked for."""

    path: Path
    meta: dict
    frames: np.ndarray  # uint8 (N, S, S, 3)
    flow: np.ndarray  # uint8 (N-1, S, S, 2)

    @property
    def frame_indices(self) -> np.ndarray:
        return np.asarray(self.meta["frame_indices"], dtype=np.int64)

    @property
    def keypoints(self) -> tuple[np.ndarray, np.ndarray]:
        """Pose estimates float32 (M, K, 3) (x, y, score) and their frame positions (M,)."""
        path = self.path / KEYPOINTS_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.path} holds no keypoints.npy: preprocess with a chain that has "
                "PoseAlignment (the cache keeps its estimates)"
            )
        positions = np.asarray(self.meta["keypoint_positions"], dtype=np.int64)
        return np.load(path, mmap_mode="r"), positions


def read_cached_video(cache_root: str | os.PathLike, subject_id: str) -> CachedVideo:
    """Open a cached video; raises FileNotFoundError naming the fix if it is missing."""
    path = Path(cache_root) / subject_id
    if not (path / META_FILE).is_file():
        raise FileNotFoundError(
            f"No preprocessed cache for {subject_id} at {path}. Run "
            f"tools/preprocess_videos.py CONFIG --data-root DATA --out {cache_root} first."
        )
    meta = json.loads((path / META_FILE).read_text())
    frames = np.load(path / FRAMES_FILE, mmap_mode="r")
    flow = np.load(path / FLOW_FILE, mmap_mode="r")
    return CachedVideo(path=path, meta=meta, frames=frames, flow=flow)
