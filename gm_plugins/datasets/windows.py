"""Window arithmetic: cutting an infant's sampled video into classifier windows (no OpenMMLab).

Windows live on the sampled timeline: the N frames that ``DecodeFrames`` kept (and the cache
holds) at ``sample_fps`` frames per second (6 in the paper, whatever the camera). A window of
``span`` seconds holds ``round(span * sample_fps)`` flow fields, i.e. that many + 1 consecutive
sampled frames; windows start every ``start_stride`` seconds. The paper's 12 windows starting
every 5 s, each 1 s long (6 flow fields at 6 fps), are ``WindowSpec(start_stride=5, span=1,
num_windows=12)``, and a 25, 30, 50 or 60 fps recording of the same infant gets the same windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def round_half_up(value: float) -> int:
    """Nearest integer, halves rounded up (Python's ``round`` rounds them to even)."""
    return math.floor(value + 0.5 + 1e-9)


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut.

    Args:
        start_stride: time between window starts.
        span: length of a window; it holds ``round(span * sample_fps)`` flow fields.
        num_windows: at most this many windows per video (None: as many as fit).
        unit: ``'seconds'`` (what configs use) or ``'frames'``: source-video frames, converted
            with the video's own fps, so its windows differ between cameras (old configs only).
            None: ``'seconds'``, or ``'frames'`` when ``frame_step`` is given, as old configs
            that give a frame step without a unit meant frames.
        offset: start of the first window, in ``unit``.
        frame_step: accepted for old configs and otherwise ignored: the cache's sample rate
            decides.
    """

    start_stride: float = 5.0
    span: float = 1.0
    num_windows: int | None = 12
    unit: str | None = None
    offset: float = 0.0
    frame_step: int | None = None

    def __post_init__(self) -> None:
        if self.unit is None:
            # frozen dataclass: set the resolved unit once, here
            object.__setattr__(self, "unit", "frames" if self.frame_step is not None else "seconds")
        if self.unit not in ("frames", "seconds"):
            raise ValueError(f"window unit must be 'seconds' or 'frames', got {self.unit!r}")
        if not (self.start_stride > 0 and self.span > 0 and self.offset >= 0):
            raise ValueError(f"window start_stride and span must be > 0, offset >= 0: {self}")
        if self.num_windows is not None and self.num_windows < 1:
            raise ValueError(f"window num_windows must be >= 1 or None: {self}")

    def seconds(self, value: float, fps: float | None = None) -> float:
        """``value`` (in ``unit``) in seconds; ``fps`` is the source rate, needed for frames."""
        if self.unit == "seconds":
            return float(value)
        if not fps or fps <= 0:
            raise ValueError(f"a window in frames needs the video's source fps, got {fps}")
        return value / fps

    def num_flows(self, sample_fps: float, fps: float | None = None) -> int:
        """Flow fields per window (L): ``round(span seconds * sample_fps)``."""
        flows = round_half_up(self.seconds(self.span, fps) * sample_fps)
        if flows < 1:
            raise ValueError(
                f"window span {self.span} {self.unit} is shorter than one sampled frame at "
                f"{sample_fps:g} fps: lengthen the span"
            )
        return flows

    def duration(self, sample_fps: float, fps: float | None = None) -> float:
        """A window's length in seconds as cut: ``num_flows / sample_fps``."""
        return self.num_flows(sample_fps, fps) / sample_fps


def window_starts(
    num_frames: int, sample_fps: float, spec: WindowSpec, fps: float | None = None
) -> list[int]:
    """Positions (in the N sampled frames) where the windows that fit entirely start.

    Args:
        num_frames: N, sampled (cached) frames of the video.
        sample_fps: sampled frames per second.
        spec: the windows.
        fps: the source frame rate, needed only for ``unit='frames'``.

    Returns:
        Start positions ``round((offset + j * start_stride) * sample_fps)``, j = 0, 1, ...,
        for which the window's last frame ``start + num_flows`` is still < N.
    """
    if not sample_fps > 0:
        raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
    flows = spec.num_flows(sample_fps, fps)
    stride = spec.seconds(spec.start_stride, fps) * sample_fps
    if stride < 1 - 1e-9:
        raise ValueError(
            f"window start_stride {spec.start_stride} {spec.unit} is shorter than one sampled "
            f"frame at {sample_fps:g} fps (windows would repeat): lengthen it"
        )
    offset = spec.seconds(spec.offset, fps) * sample_fps
    starts: list[int] = []
    while spec.num_windows is None or len(starts) < spec.num_windows:
        start = round_half_up(offset + len(starts) * stride)
        if start + flows > num_frames - 1:
            break
        starts.append(start)
    return starts


def window_positions(start: int, num_flows: int, num_frames: int | None = None) -> np.ndarray:
    """Positions in the sampled frames of one window's ``num_flows + 1`` frames.

    Args:
        start: position of the window's first frame.
        num_flows: flow fields in the window (L).
        num_frames: N, to check that the window fits (None: unchecked).

    Returns:
        (L + 1,) int64; flow ``i`` of the window is cached flow ``positions[i]`` (from cached
        frame ``positions[i]`` to ``positions[i] + 1``).
    """
    positions = start + np.arange(num_flows + 1, dtype=np.int64)
    if start < 0 or (num_frames is not None and positions[-1] >= num_frames):
        raise ValueError(
            f"a window of {num_flows} flow fields at position {start} does not fit in "
            f"{num_frames} sampled frames"
        )
    return positions
