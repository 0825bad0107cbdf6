"""The generator's files (videos, ground truth, images, tables), each written atomically.

Built on :mod:`gm_plugins.utils.io`: every file appears under its final name only once it is
complete, and a rerun deletes the temporaries of runs that were killed
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable

import av
import cv2
import numpy as np

from gm_plugins.utils.io import atomic_path, write_bytes_atomic

__all__ = ["encode_video", "write_npz", "write_png", "write_video"]

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """Like np.savez_compressed, atomically and byte-reproducibly (np.load reads it).

    numpy stamps each member with the current time; a fixed stamp makes a rerun's file identical.
    """
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB (H, W, 3) or single-channel (H, W) uint8 image as PNG."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    write_bytes_atomic(path, encoded.tobytes())


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
