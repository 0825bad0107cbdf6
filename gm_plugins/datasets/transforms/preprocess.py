"""Run the preprocessing chain on one video, online or for the offline cache.

``tools/preprocess_videos.py`` (offline, writes the cache) and online users (the dataset's slow
path, an inferencer) call the same :func:`preprocess_video`, so both see identical frames.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gm_plugins.compat import library_scope

PipelineLike = Sequence[dict | Callable] | Callable
_process_pipeline = None  # the chain of this process, built once by init_cache_worker


def build_preprocess_pipeline(pipeline: PipelineLike) -> Callable[[dict], dict]:
    """A callable chain from transform configs (``preprocess_pipeline`` of a config) or objects.

    Transforms are built from MMAction2's TRANSFORMS registry under the 'mmaction' scope, so the
    caller's default scope does not matter.
    """
    if callable(pipeline):
        return pipeline
    from mmengine.dataset import Compose

    with library_scope("mmaction"):
        return Compose([dict(step) if isinstance(step, dict) else step for step in pipeline])


def preprocess_video(pipeline: PipelineLike, video_path: str | os.PathLike) -> dict:
    """Run the chain on a video file and return its results dict.

    With the usual chain (DecodeFrames, BackgroundRemoval, PoseAlignment, OpticalFlow) the
    results hold ``imgs`` (N aligned RGB frames), ``flows`` (float32 (N-1, S, S, 2) in [-1, 1]),
    ``frame_inds``, ``alignment_matrix`` (N, 2, 3), ``body_frame`` and ``alignment_fallback``.
    """
    chain = build_preprocess_pipeline(pipeline)
    results = chain(dict(filename=os.fspath(video_path), start_index=0, modality="RGB"))
    if results is None:
        raise RuntimeError(f"{video_path}: a preprocessing transform returned None")
    return results


def _alignment_meta(results: dict) -> dict:
    bodies = results.get("body_frame")
    segments = bodies if isinstance(bodies, list) else [bodies] if bodies else []
    return dict(
        mode=results.get("alignment_mode"),
        matrix=segments[0]["matrix"] if len(segments) == 1 else None,
        matrices=[segment["matrix"] for segment in segments],
        body_frame=bodies,
        fallback=results.get("alignment_fallback"),
    )


def cache_record(results: dict, video: str, frame_step: int | None = None) -> dict:
    """Arrays and meta for :func:`gm_plugins.datasets.cache.write_cached_video`.

    Returns:
        dict with ``frames`` uint8 (N, S, S, 3), ``flow_quantised`` uint8 (N-1, S, S, 2),
        ``matrices`` float32 (N, 2, 3) and a JSON-ready ``meta``; with pose estimates in
        ``results``, also ``keypoints`` float32 (M, K, 3) (x, y in aligned pixels, score) and
        ``meta['keypoint_positions']``.
    """
    from gm_plugins.datasets.cache import quantise_flow

    frames = np.stack(results["imgs"]).astype(np.uint8)
    bound = float(results["flow_bound"])
    flow_pixels = np.asarray(results["flows"], np.float32) * bound
    matrices = results.get("alignment_matrix")
    if matrices is None:
        matrices = np.repeat(np.eye(2, 3, dtype=np.float32)[None], len(frames), 0)
    meta = dict(
        video=os.fspath(video),
        frame_indices=[int(i) for i in results["frame_inds"]],
        fps=float(results["fps"]),
        total_frames=int(results["total_frames"]),
        frame_step=int(frame_step or results.get("frame_step", 1)),
        original_shape=[int(v) for v in results["original_shape"]],
        out_size=int(frames.shape[1]),
        alignment=_alignment_meta(results),
        flow=dict(algorithm=results.get("flow_algorithm"), bound=bound),
    )
    record = dict(
        frames=frames,
        flow_quantised=quantise_flow(flow_pixels, bound),
        matrices=np.asarray(matrices, np.float32),
        meta=meta,
    )
    if results.get("pose_keypoints") is not None:
        positions = np.asarray(results["pose_frame_positions"], np.int64)
        record["keypoints"] = aligned_keypoints(
            results["pose_keypoints"], results["pose_scores"], record["matrices"][positions]
        )
        meta["keypoint_positions"] = positions.tolist()
    return record


def aligned_keypoints(
    keypoints: np.ndarray, scores: np.ndarray, matrices: np.ndarray
) -> np.ndarray:
    """Source-pixel estimates (M, K, 2) with scores (M, K) -> (M, K, 3) in aligned pixels."""
    from .geometry import transform_points

    points = np.stack([transform_points(m, k) for m, k in zip(matrices, keypoints, strict=True)])
    return np.concatenate([points, np.asarray(scores)[..., None]], -1).astype(np.float32)


def init_cache_worker(pipeline_config: list, torch_threads: int) -> None:
    """Build this process's chain once (models load on the first video) and limit its threads."""
    import cv2
    import torch

    global _process_pipeline
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(1)  # processes already share the cores
    _process_pipeline = build_preprocess_pipeline(pipeline_config)


def preprocess_to_cache(task: tuple[dict, str, str]) -> tuple[str, str | None, float]:
    """Preprocess one ``subjects.csv`` row and write its cache folder atomically.

    Args:
        task: (row with subject_id, label, environment, video; data root; cache root).

    Returns:
        (subject_id, None or the error with its traceback tail, seconds). Never raises an
        ``Exception``, so one bad video cannot stop a batch.
    """
    from gm_plugins.datasets.cache import write_cached_video

    row, data_root, out = task
    start = time.perf_counter()
    try:
        results = preprocess_video(_process_pipeline, Path(data_root) / row["video"])
        record = cache_record(results, row["video"])
        record["meta"].update(label=row["label"], environment=row["environment"])
        write_cached_video(out, row["subject_id"], **record)
        return row["subject_id"], None, time.perf_counter() - start
    except Exception as error:
        detail = traceback.format_exc(limit=-3)
        return row["subject_id"], f"{type(error).__name__}: {error}\n{detail}", 0.0
