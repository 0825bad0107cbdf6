"""Atomic writers: every file appears under its final name only once it is complete.

A temporary sibling (``.<name>.<pid>.tmp``) is written first and moved into place with os.replace,
so a killed run never leaves a half-written file that looks finished; a rerun deletes the
temporaries of runs that were killed (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it to ``path`` when the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{os.getpid()}{TEMPORARY_SUFFIX}")
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporaries under ``folder`` left by processes that no longer run (a killed run).

    Temporaries of a live process (``.<name>.<pid>.tmp``) are kept; returns the deleted paths.
    """
    removed = []
    for path in Path(folder).rglob(f".*{TEMPORARY_SUFFIX}"):
        pid = path.name.removesuffix(TEMPORARY_SUFFIX).rpartition(".")[2]
        if pid.isdigit() and _is_running(int(pid)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie awaiting its reaper has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:  # Linux: a killed worker stays a zombie until its new parent reaps it, which can be slow
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # with /proc, a missing entry means reaped
    except (OSError, IndexError):
        return True
    return state != "Z"


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
