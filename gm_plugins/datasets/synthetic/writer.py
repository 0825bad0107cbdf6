"""Atomic writers: every file appears under its final name only once it is complete.

A temporary sibling (``.<name>.<pid>.tmp``) is written first and moved into place with os.replace,
so a killed run never leaves a half-written file that looks finished.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it to ``path`` when the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_json(path: str | os.PathLike, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def write_csv(path: str | os.PathLike, header: list[str], rows: Iterable[Iterable]) -> None:
    buffer = io.StringIO()
    table = csv.writer(buffer, lineterminator="\n")
    table.writerow(header)
    table.writerows(rows)
    write_bytes(path, buffer.getvalue().encode())


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """np.savez_compressed, atomically (a file object keeps numpy from renaming the file)."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB (H, W, 3) or single-channel (H, W) uint8 image as PNG."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    write_bytes(path, encoded.tobytes())


def write_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int, crf: int = 18
) -> int:
    """Atomically encode RGB frames (H, W, 3) uint8 as an H.264 MP4; returns the frame count."""
    with atomic_path(path) as temporary:
        return encode_video(temporary, frames, fps, crf)


def encode_video(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int, crf: int = 18
) -> int:
    """Encode RGB frames (H, W, 3) uint8 as H.264 (yuv420p) MP4 at ``path``; returns the count.

    One encoder thread and explicit timestamps keep the output identical from run to run.
    """
    count, stream = 0, None
    with av.open(str(path), mode="w", format="mp4") as container:
        for frame in frames:
            if stream is None:
                stream = _h264_stream(container, frame.shape[1], frame.shape[0], fps, crf)
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            # x264's rate control reads timestamps; unset ones make the output vary between runs.
            video_frame.pts = count
            for packet in stream.encode(video_frame):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        for packet in stream.encode():
            container.mux(packet)
    return count


def _h264_stream(container, width: int, height: int, fps: int, crf: int):
    if width % 2 or height % 2:
        raise ValueError(f"H.264 with yuv420p needs an even frame size, got {width}x{height}")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # x264's macroblock-tree rate control gave different bits on repeated runs of the same frames;
    # without it (and with one thread) the encoding is reproducible.
    stream.options = {
        "crf": str(crf),
        "preset": "veryfast",
        "threads": "1",
        "x264-params": "mbtree=0",
    }
    stream.codec_context.thread_count = 1
    return stream
