"""Decode only the video frames the classifier consumes, on one time base for every camera.

Frames are sampled by time: sampled frame ``k`` is the source frame nearest to ``k / target_fps``
seconds, i.e. source index ``floor(k * fps / target_fps + 1/2)``. At the paper's 6 fps this
keeps source frames 0, 5, 10, ... of a 30 fps video, 0, 4, 8, 13, 17, ... of a 25 fps one and
0, 10, 20, ... of a 60 fps one, so a window of a given duration holds the same number of frames
(and flow fields) whatever the camera. Source frame ``i`` is taken to be shown at ``i / fps``
seconds (constant frame rate; re-encode variable-rate phone videos with a constant rate).

A source up to :data:`FPS_TOLERANCE` (5 %) slower than the target is sampled as is: every
frame is kept and counted as one step of the target rate (5.88 fps at a target of 6: the motion
between two frames spans 2 % more time than in training, less than infants vary). Slower rates
(and unknown ones) are refused: sampling them would repeat frames (zero flow that looks like a
still infant) or show the classifier motion over steps it was not trained on. A rate above
1000 fps is a broken header, not a camera.

:func:`iter_sampled_frames` yields one sampled frame at a time (bounded memory, for long
recordings); :class:`DecodeFrames` collects them for the in-memory preprocessing chain;
:func:`probe_video` reads a file's frame rate, size and length without decoding it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from gm_plugins.datasets.windows import round_half_up
from gm_plugins.preprocess.geometry import shrunk_size

DEFAULT_TARGET_FPS = 6.0
#: A source this much slower than ``target_fps`` (relative) is sampled frame by frame as if it
#: ran at ``target_fps``; a slower one is refused.
FPS_TOLERANCE = 0.05
MAX_PLAUSIBLE_FPS = 1000.0
#: The smallest ``max_side`` a decoder accepts (pixels).
MIN_MAX_SIDE = 64
_REENCODE = (
    "re-encode it with a constant frame rate, e.g. "
    "`ffmpeg -i IN -r 30 -c:v libx264 -pix_fmt yuv420p OUT.mp4`"
)


class VideoDecodeError(RuntimeError):
    """A video cannot be used: missing, empty, unreadable, without a usable frame rate or too
    short. The message names the file and the fix."""


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> (H, W, 3) uint8 RGB."""
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] == 1:
        return np.repeat(frame, 3, axis=-1)
    return np.ascontiguousarray(frame[..., :3])


def check_fps(path: str, fps: float | None, target_fps: float | None = DEFAULT_TARGET_FPS) -> float:
    """Return ``fps`` as a float if a video at that rate can be sampled, else raise.

    The plausible range is ``[target_fps * (1 - FPS_TOLERANCE), MAX_PLAUSIBLE_FPS]``
    (``(0, MAX_PLAUSIBLE_FPS]`` with ``target_fps=None``, i.e. when sampling by a fixed frame
    step).

    Raises:
        VideoDecodeError: unknown (None, 0, NaN) or implausible rate, naming ``path`` and the fix.
    """
    value = float(fps) if fps is not None else math.nan
    if not math.isfinite(value) or value <= 0:
        raise VideoDecodeError(
            f"{path}: the video does not state a usable frame rate (fps={fps}), so its frames "
            f"cannot be placed in time; {_REENCODE}"
        )
    if value > MAX_PLAUSIBLE_FPS:
        raise VideoDecodeError(
            f"{path}: its stated frame rate {value:g} fps is above {MAX_PLAUSIBLE_FPS:g} fps, "
            f"which means broken timing information rather than a camera; {_REENCODE}"
        )
    if target_fps is not None and value < target_fps * (1 - FPS_TOLERANCE):
        raise VideoDecodeError(
            f"{path}: recorded at {value:g} fps, more than {FPS_TOLERANCE:.0%} below the "
            f"sampling rate target_fps={target_fps:g} the model was trained at: its frames are "
            f"1/{value:g} s apart, so sampling would repeat frames (zero optical flow) or show "
            f"the classifier motion over longer steps than it learned. Record at {target_fps:g} "
            "fps or more (phones and webcams record 25-30 fps), check the stated rate with "
            "ffprobe if the camera was faster, or use a model whose chain samples at "
            f"target_fps <= {value:g} (DecodeFrames in its preprocessing config)"
        )
    return value


def check_rate_arguments(target_fps: float | None, frame_step: int | None) -> None:
    """Raise ValueError unless exactly one of a valid ``target_fps`` and ``frame_step`` is given."""
    if (target_fps is None) == (frame_step is None):
        raise ValueError(
            f"give exactly one of target_fps and frame_step, got {target_fps} and {frame_step}"
        )
    if frame_step is not None and frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    if target_fps is not None and not 0 < target_fps <= MAX_PLAUSIBLE_FPS:
        raise ValueError(
            f"target_fps must be in (0, {MAX_PLAUSIBLE_FPS:g}], got {target_fps} "
            "(or give frame_step)"
        )


class FrameSampler:
    """Which source frames to keep: by time (``target_fps``) or every ``frame_step``-th frame.

    Args:
        fps: the source frame rate (checked with :func:`check_fps`).
        target_fps: sampling rate in frames per second (None: use ``frame_step``).
        frame_step: keep source frames 0, frame_step, 2 * frame_step, ... instead.
        path: the video, named in errors.
    """

    def __init__(
        self,
        fps: float,
        target_fps: float | None = DEFAULT_TARGET_FPS,
        frame_step: int | None = None,
        path: str = "video",
    ) -> None:
        check_rate_arguments(target_fps, frame_step)
        self.fps = check_fps(path, fps, target_fps if frame_step is None else None)
        self.target_fps = target_fps
        self.frame_step = frame_step

    @property
    def every_frame(self) -> bool:
        """True when the source is slower than ``target_fps`` (within :data:`FPS_TOLERANCE`):
        every frame is kept and counts as one step of the target rate."""
        return self.frame_step is None and self.fps < float(self.target_fps)

    @property
    def sample_fps(self) -> float:
        """Sampled frames per second of video."""
        if self.frame_step is not None:
            return self.fps / self.frame_step
        return float(self.target_fps)

    @property
    def regular_step(self) -> int | None:
        """The source step when exactly every k-th frame is kept (30 -> 6 fps: 5), else None."""
        if self.frame_step is not None:
            return self.frame_step
        if self.every_frame:
            return 1
        ratio = self.fps / self.target_fps
        return round(ratio) if abs(ratio - round(ratio)) < 1e-9 else None

    def index(self, k: int) -> int:
        """Source index of sampled frame ``k`` (strictly increasing in ``k``)."""
        if self.frame_step is not None:
            return k * self.frame_step
        if self.every_frame:
            return k
        return round_half_up(k * self.fps / self.target_fps)


def _check_file(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: video file not found; check the path (and data_root)")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(
            f"{path}: the file is empty (0 bytes); copy or export the recording again"
        )
    return path


def _cannot_decode(path: str, error: Exception) -> VideoDecodeError:
    return VideoDecodeError(
        f"{path}: cannot decode the video ({type(error).__name__}: {error}); check that FFmpeg "
        "can play it (is it a video at all?), or re-encode it (e.g. H.264 MP4)"
    )


def _pyav_stream(container, path: str):
    if not container.streams.video:
        raise VideoDecodeError(
            f"{path}: no video stream in the file (audio or data only); use the video recording"
        )
    return container.streams.video[0]


def _pyav_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _pyav_sampled(
    path: str, make_sampler: Callable, info: dict, max_side: int | None
) -> Iterator[tuple[int, np.ndarray]]:
    import av

    with av.open(path) as container:
        stream = _pyav_stream(container, path)
        sampler = make_sampler(_pyav_fps(stream))
        info["sampler"] = sampler
        stream.thread_type = "AUTO"
        k, wanted, total = 0, sampler.index(0), 0
        for frame in container.decode(stream):
            if total == wanted:
                info.setdefault("source_shape", (frame.height, frame.width))
                width, height = shrunk_size(frame.width, frame.height, max_side)
                # rgb24 also expands grayscale and paletted sources to three channels; a
                # large frame is shrunk in the same conversion (area averaging).
                if (width, height) != (frame.width, frame.height):
                    frame = frame.reformat(
                        width=width, height=height, format="rgb24", interpolation="AREA"
                    )
                yield total, as_rgb(frame.to_ndarray(format="rgb24"))
                k += 1
                wanted = sampler.index(k)
            total += 1
    info["total_frames"] = total


def _decord_sampled(
    path: str, make_sampler: Callable, info: dict, max_side: int | None
) -> Iterator[tuple[int, np.ndarray]]:
    import cv2
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    sampler = make_sampler(float(reader.get_avg_fps()))
    info["sampler"] = sampler
    total, k = len(reader), 0
    while (index := sampler.index(k)) < total:
        frame = as_rgb(reader[index].asnumpy())
        info.setdefault("source_shape", frame.shape[:2])
        size = shrunk_size(frame.shape[1], frame.shape[0], max_side)
        if size != (frame.shape[1], frame.shape[0]):
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        yield index, frame
        k += 1
    info["total_frames"] = total


_BACKENDS = {"pyav": _pyav_sampled, "decord": _decord_sampled}


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r}: choose one of {sorted(_BACKENDS)}")


def _check_max_side(max_side: int | None) -> None:
    if max_side is not None and (
        isinstance(max_side, bool) or int(max_side) != max_side or max_side < MIN_MAX_SIDE
    ):
        raise ValueError(
            f"max_side={max_side!r}: give None (decode at the video's size) or a whole number "
            f">= {MIN_MAX_SIDE} (the longest side of a decoded frame, in pixels)"
        )  # fmt: skip


def _sampled(
    path: str | os.PathLike,
    target_fps: float | None,
    frame_step: int | None,
    backend: str,
    info: dict,
    max_side: int | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Generator behind :func:`iter_sampled_frames`; fills ``info`` with ``sampler`` (at the
    first frame), ``source_shape`` (at the first kept frame) and ``total_frames`` (once
    exhausted)."""
    _check_backend(backend)
    _check_max_side(max_side)
    check_rate_arguments(target_fps, frame_step)
    path = _check_file(path)

    def make_sampler(fps: float) -> FrameSampler:
        return FrameSampler(fps, target_fps, frame_step, path)

    source = _BACKENDS[backend](path, make_sampler, info, max_side)
    try:
        for index, frame in source:
            yield index, index / info["sampler"].fps, frame
    except VideoDecodeError:
        raise
    except Exception as error:
        raise _cannot_decode(path, error) from error


def iter_sampled_frames(
    path: str | os.PathLike,
    target_fps: float | None = DEFAULT_TARGET_FPS,
    backend: str = "pyav",
    *,
    frame_step: int | None = None,
    info: dict | None = None,
    max_side: int | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield the sampled frames of a video one at a time, never holding more than one.

    Args:
        path: the video file.
        target_fps: sampling rate; sampled frame ``k`` is the source frame nearest to
            ``k / target_fps`` seconds.
        backend: ``'pyav'`` (decodes sequentially) or ``'decord'`` (seeks to each frame).
        frame_step: keep every ``frame_step``-th source frame instead (target_fps is ignored).
        info: optional dict that receives ``'sampler'`` (the :class:`FrameSampler`, with
            ``fps``, ``sample_fps`` and ``regular_step``) once decoding starts,
            ``'source_shape'`` (the video's (H, W)) at the first kept frame and
            ``'total_frames'`` (source frames counted) once the video is exhausted.
        max_side: frames whose long side exceeds it come out shrunk to it (area averaging
            in the colour conversion, aspect kept); None keeps the video's size.

    Yields:
        ``(source index, timestamp in seconds, (H, W, 3) uint8 RGB frame)``.

    Raises:
        VideoDecodeError: (when iteration starts, or mid-way for a damaged file) the file is
            missing, empty, not a video, has no video stream or an unknown or implausible frame
            rate; the message names the file and the fix.
    """
    target_fps = None if frame_step is not None else target_fps
    info = {} if info is None else info
    yield from _sampled(path, target_fps, frame_step, backend, info, max_side)


def probe_video(path: str | os.PathLike) -> dict:
    """A video's properties from its header, without decoding frames.

    Returns:
        dict with ``fps`` (float; 0.0 when the file does not state it), ``total_frames`` (int;
        an estimate from duration x fps when the container does not count frames), ``width``,
        ``height`` (int pixels) and ``duration`` (float seconds; 0.0 when unknown).

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or has no video stream.
    """
    import av

    path = _check_file(path)
    try:
        container = av.open(path)
    except Exception as error:
        raise _cannot_decode(path, error) from error
    with container:
        stream = _pyav_stream(container, path)
        fps = _pyav_fps(stream)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        total = int(stream.frames or 0) or round_half_up(duration * fps)
        return dict(
            fps=fps,
            total_frames=total,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            duration=duration,
        )


def decode_video(
    path: str | os.PathLike,
    target_fps: float | None = DEFAULT_TARGET_FPS,
    backend: str = "pyav",
    min_frames: int = 2,
    frame_step: int | None = None,
    max_side: int | None = None,
) -> dict:
    """Decode the sampled frames of a video into memory (see :func:`iter_sampled_frames`).

    Returns:
        dict with ``imgs`` (list of N (H, W, 3) uint8 RGB), ``frame_inds`` (int64 (N,) source
        indices), ``timestamps`` (float64 (N,) seconds), ``fps`` (source), ``sample_fps``,
        ``frame_step`` (the source step when every k-th frame was kept exactly, else None),
        ``total_frames``, ``original_shape`` and ``img_shape`` (H, W of the decoded frames),
        ``source_shape`` (H, W of the video) and ``decode_scale`` (decoded / source width).

    Raises:
        VideoDecodeError: as :func:`iter_sampled_frames`, or fewer than ``min_frames`` frames.
    """
    info: dict = {}
    frames, indices, times = [], [], []
    for index, timestamp, frame in iter_sampled_frames(
        path, target_fps, backend, frame_step=frame_step, info=info, max_side=max_side
    ):
        frames.append(frame)
        indices.append(index)
        times.append(timestamp)
    shape = frames[0].shape[:2] if frames else None
    sampling = sampling_record(path, info, indices, times, shape, min_frames, frame_step)
    return dict(sampling, imgs=frames, img_shape=shape)


def sampling_record(
    path: str | os.PathLike,
    info: dict,
    indices: list[int],
    times: list[float],
    frame_shape: tuple[int, int] | None,
    min_frames: int = 2,
    frame_step: int | None = None,
) -> dict:
    """What a finished :func:`iter_sampled_frames` run decoded, checked against ``min_frames``.

    Args:
        info: the dict that :func:`iter_sampled_frames` filled.
        indices, times: the source indices and timestamps it yielded.
        frame_shape: (H, W) of the frames.

    Returns:
        dict with ``frame_inds``, ``timestamps``, ``fps``, ``sample_fps``, ``frame_step``,
        ``total_frames``, ``original_shape`` (H, W of the decoded frames, the pixels every
        later coordinate refers to), ``source_shape`` (H, W of the video) and
        ``decode_scale`` (decoded / source width; 1.0 unless the decoder shrank the frames).

    Raises:
        VideoDecodeError: fewer than ``min_frames`` (at least 1) sampled frames.
    """
    sampler: FrameSampler = info["sampler"]
    if len(indices) < max(min_frames, 1):
        total = info["total_frames"]
        how = f"frame_step={frame_step}" if frame_step else f"target_fps={sampler.sample_fps:g}"
        fix = "a smaller frame_step" if frame_step else "a higher target_fps (for every video)"
        raise VideoDecodeError(
            f"{os.fspath(path)}: {total} source frame(s) at {sampler.fps:g} fps "
            f"({total / sampler.fps:.2f} s) give {len(indices)} frame(s) with {how}; the "
            f"preprocessing needs at least {min_frames} (optical flow pairs consecutive "
            f"frames). Use a longer video or {fix}."
        )
    source_shape = tuple(info.get("source_shape") or frame_shape or (0, 0))
    decode_scale = frame_shape[1] / source_shape[1] if frame_shape and source_shape[1] else 1.0
    return dict(
        frame_inds=np.asarray(indices, np.int64),
        timestamps=np.asarray(times, np.float64),
        fps=sampler.fps,
        sample_fps=sampler.sample_fps,
        frame_step=sampler.regular_step,
        total_frames=info["total_frames"],
        original_shape=frame_shape,
        source_shape=source_shape,
        decode_scale=decode_scale,
    )


@TRANSFORMS.register_module()
class DecodeFrames(BaseTransform):
    """Decode ``results['filename']`` at ``target_fps`` frames per second, as RGB.

    Sampled frame ``k`` is the source frame nearest to ``k / target_fps`` seconds (the paper's
    6 fps keeps every 5th frame of 30 fps), so windows in seconds hold the same number of frames
    for every camera. Only the kept frames are converted to arrays; grayscale videos come out
    with 3 identical channels. Source rates outside ``[target_fps, 1000]`` fps are refused
    (:func:`check_fps`).

    Required keys:
        - filename

    Added keys:
        - imgs (list of N (H, W, 3) uint8 RGB)
        - frame_inds (int64 (N,), source frame numbers)
        - timestamps (float64 (N,), seconds: source index / fps)
        - fps (source), sample_fps (sampled frames per second)
        - frame_step (int source step when the sampling keeps exactly every k-th frame, e.g.
          5 at 30 fps; None otherwise, e.g. at 25 fps)
        - total_frames, original_shape, img_shape

    Args:
        target_fps (float): sampled frames per second. Defaults to 6 (the paper).
        frame_step (int, optional): keep every ``frame_step``-th source frame instead; then the
            time base depends on the camera, so use it only for data of one frame rate.
            Given, it replaces ``target_fps``. Defaults to None.
        backend (str): 'pyav' (decodes sequentially) or 'decord'. Defaults to 'pyav'.
        min_frames (int): fewer kept frames raise :class:`VideoDecodeError`. Defaults to 2.
        max_side (int, optional): kept frames whose long side exceeds it are shrunk to it
            while they are converted to RGB (area averaging, aspect kept), so a 1080p
            recording is masked, aligned and held at that size; keypoints, boxes and matrices
            are then in the shrunk frame's pixels (``decode_scale`` says by how much).
            None keeps the video's size. Defaults to None.
    """

    def __init__(
        self,
        target_fps: float | None = DEFAULT_TARGET_FPS,
        frame_step: int | None = None,
        backend: str = "pyav",
        min_frames: int = 2,
        max_side: int | None = None,
    ) -> None:
        if frame_step is not None:
            target_fps = None
        check_rate_arguments(target_fps, frame_step)
        _check_backend(backend)
        _check_max_side(max_side)
        self.target_fps = None if target_fps is None else float(target_fps)
        self.frame_step = frame_step
        self.backend = backend
        self.min_frames = min_frames
        self.max_side = None if max_side is None else int(max_side)

    def transform(self, results: dict) -> dict:
        results.update(
            decode_video(
                results["filename"],
                target_fps=self.target_fps,
                backend=self.backend,
                min_frames=self.min_frames,
                frame_step=self.frame_step,
                max_side=self.max_side,
            )
        )
        return results

    def __repr__(self) -> str:
        rate = (
            f"frame_step={self.frame_step}"
            if self.frame_step is not None
            else f"target_fps={self.target_fps:g}"
        )
        size = "" if self.max_side is None else f", max_side={self.max_side}"
        return (
            f"{self.__class__.__name__}({rate}, backend='{self.backend}', "
            f"min_frames={self.min_frames}{size})"
        )
