"""Window arithmetic: cutting an infant's video into classifier windows (no OpenMMLab imports).

The paper cuts each 30 fps video into 12 windows starting every 150 frames, each spanning 30
frames sampled every 5th frame (6 flow fields). :class:`WindowSpec` holds those numbers in
frames or seconds, so the same config serves other frame rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut.

    Args:
        start_stride: distance between window starts.
        span: length of a window; it holds ``span / frame_step`` flow fields.
        num_windows: at most this many windows per video (None: as many as fit).
        frame_step: distance between the frames used inside a window (source frames).
        unit: ``'frames'`` or ``'seconds'`` for ``start_stride`` and ``span``.
        offset: start of the first window, in ``unit``.
    """

    start_stride: float = 150
    span: float = 30
    num_windows: int | None = 12
    frame_step: int = 5
    unit: str = "frames"
    offset: float = 0

    def __post_init__(self) -> None:
        if self.unit not in ("frames", "seconds"):
            raise ValueError(f"window unit must be 'frames' or 'seconds', got {self.unit!r}")
        if self.start_stride <= 0 or self.span <= 0 or self.frame_step <= 0:
            raise ValueError(f"window start_stride, span and frame_step must be > 0: {self}")

    def in_frames(self, value: float, fps: float) -> int:
        return round(value * fps) if self.unit == "seconds" else round(value)

    def num_flows(self, fps: float) -> int:
        """Flow fields per window: span // frame_step."""
        flows = self.in_frames(self.span, fps) // self.frame_step
        if flows < 1:
            raise ValueError(
                f"window span {self.span} {self.unit} at {fps} fps is shorter than one "
                f"frame step ({self.frame_step} frames): lengthen the span"
            )
        return flows


def window_starts(num_source_frames: int, fps: float, spec: WindowSpec) -> list[int]:
    """Source-frame starts of the windows that fit in a video of ``num_source_frames``."""
    stride = spec.in_frames(spec.start_stride, fps)
    needed = spec.num_flows(fps) * spec.frame_step + 1  # frames from first to last used
    offset = spec.in_frames(spec.offset, fps)
    if stride < 1:
        raise ValueError(f"window start_stride is below one frame at {fps} fps: {spec}")
    last_start = num_source_frames - needed
    starts = list(range(offset, last_start + 1, stride)) if last_start >= offset else []
    if spec.num_windows is not None:
        starts = starts[: spec.num_windows]
    return starts


def window_positions(
    frame_indices: np.ndarray, start: int, num_flows: int, step: int
) -> np.ndarray:
    """Positions in the cached frames of one window's ``num_flows + 1`` frames.

    Args:
        frame_indices: (N,) source index of each cached frame (sorted).
        start: source frame where the window begins.
        num_flows: flow fields in the window (L).
        step: distance between used source frames; must be the cache's frame step.

    Returns:
        (L + 1,) int array; flow ``i`` of the window is cached flow ``positions[i]``
        (from cached frame ``positions[i]`` to ``positions[i] + 1``).
    """
    wanted = start + step * np.arange(num_flows + 1)
    positions = np.searchsorted(frame_indices, wanted)
    inside = positions < len(frame_indices)
    if not inside.all() or not np.array_equal(frame_indices[positions], wanted):
        raise ValueError(
            f"window at frame {start} needs source frames {wanted.tolist()}, which the cache "
            f"does not hold (cached every {_cached_step(frame_indices)} frames from "
            f"{int(frame_indices[0])}): make window starts multiples of the cache's frame step"
        )
    return positions


def _cached_step(frame_indices: np.ndarray) -> int:
    return int(frame_indices[1] - frame_indices[0]) if len(frame_indices) > 1 else 0
