"""Decode only the video frames the classifier consumes: every ``frame_step``-th source frame."""

from __future__ import annotations

import os

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


class VideoDecodeError(RuntimeError):
    """A video cannot be used: unreadable, empty or too short. The message names the file."""


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> (H, W, 3) uint8 RGB."""
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] == 1:
        return np.repeat(frame, 3, axis=-1)
    return np.ascontiguousarray(frame[..., :3])


def _decode_pyav(path: str, frame_step: int) -> tuple[list[np.ndarray], list[int], float, int]:
    import av

    frames, indices, total = [], [], 0
    with av.open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        for frame in container.decode(stream):
            if total % frame_step == 0:
                # rgb24 also expands grayscale and paletted sources to three channels.
                frames.append(frame.to_ndarray(format="rgb24"))
                indices.append(total)
            total += 1
    return frames, indices, fps, total


def _decode_decord(path: str, frame_step: int) -> tuple[list[np.ndarray], list[int], float, int]:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    total = len(reader)
    indices = list(range(0, total, frame_step))
    batch = reader.get_batch(indices).asnumpy() if indices else np.empty((0, 1, 1, 3), np.uint8)
    return [as_rgb(frame) for frame in batch], indices, float(reader.get_avg_fps()), total


_BACKENDS = {"pyav": _decode_pyav, "decord": _decode_decord}


def decode_video(
    path: str | os.PathLike, frame_step: int = 1, backend: str = "pyav", min_frames: int = 2
) -> dict:
    """Decode every ``frame_step``-th frame of a video.

    Returns:
        dict with ``imgs`` (list of (H, W, 3) uint8 RGB), ``frame_inds`` (int64 (N,)), ``fps``,
        ``total_frames`` and ``original_shape`` (H, W).

    Raises:
        VideoDecodeError: the file is missing, unreadable, or yields fewer than ``min_frames``.
    """
    path = os.fspath(path)
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r}: choose one of {sorted(_BACKENDS)}")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: video file not found")
    try:
        frames, indices, fps, total = _BACKENDS[backend](path, frame_step)
    except VideoDecodeError:
        raise
    except Exception as error:
        raise VideoDecodeError(
            f"{path}: cannot decode the video ({type(error).__name__}: {error}); "
            "check that FFmpeg can play it, or re-encode it (e.g. H.264 MP4)"
        ) from error
    if len(frames) < min_frames:
        raise VideoDecodeError(
            f"{path}: {total} frame(s) decoded, {len(frames)} kept with frame_step={frame_step}; "
            f"the preprocessing needs at least {min_frames} (optical flow pairs consecutive "
            "frames). Use a longer video or a smaller frame_step."
        )
    frames = [as_rgb(frame) for frame in frames]
    return dict(
        imgs=frames,
        frame_inds=np.asarray(indices, np.int64),
        fps=fps,
        total_frames=total,
        original_shape=frames[0].shape[:2],
        img_shape=frames[0].shape[:2],
    )


@TRANSFORMS.register_module()
class DecodeFrames(BaseTransform):
    """Decode every ``frame_step``-th frame of ``results['filename']`` as RGB.

    Only the frames the classifier consumes are converted to arrays (the paper keeps every 5th
    frame of a 30 fps video, i.e. 6 fps). Grayscale videos come out with 3 identical channels.

    Required keys:
        - filename

    Added keys:
        - imgs (list of (H, W, 3) uint8 RGB)
        - frame_inds (int64 (N,), source frame numbers)
        - fps, total_frames, original_shape, img_shape

    Args:
        frame_step (int): keep source frames 0, frame_step, 2 * frame_step, ...
        backend (str): 'pyav' (decodes sequentially, fast for small steps) or 'decord'.
        min_frames (int): fewer kept frames raise :class:`VideoDecodeError`. Default 2.
    """

    def __init__(self, frame_step: int = 5, backend: str = "pyav", min_frames: int = 2) -> None:
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend={backend!r}: choose one of {sorted(_BACKENDS)}")
        self.frame_step = frame_step
        self.backend = backend
        self.min_frames = min_frames

    def transform(self, results: dict) -> dict:
        decoded = decode_video(results["filename"], self.frame_step, self.backend, self.min_frames)
        results.update(decoded)
        results["frame_step"] = self.frame_step
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(frame_step={self.frame_step}, "
            f"backend='{self.backend}', min_frames={self.min_frames})"
        )
