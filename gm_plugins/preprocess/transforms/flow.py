"""Dense optical flow between consecutive (aligned) frames with OpenCV."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

# The paper's Farneback settings (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma).
PAPER_FARNEBACK = dict(
    pyr_scale=0.5, levels=3, winsize=5, iterations=3, poly_n=7, poly_sigma=1.5, flags=0
)
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FlowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def tvl1_available() -> bool:
    """Whether OpenCV was built with the contrib ``optflow`` module (TV-L1)."""
    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def _one_engine_per_thread(make_engine: Callable[[], object]) -> FlowFunction:
    """``engine.calc(previous, next, None)`` with one OpenCV flow object per thread (they keep
    buffers between calls, so threads must not share one)."""
    local = threading.local()

    def flow(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        engine = getattr(local, "engine", None)
        if engine is None:
            engine = local.engine = make_engine()
        return engine.calc(previous, current, None)

    return flow


def make_flow_function(algorithm: str, **params) -> FlowFunction:
    """A function (previous, next) grayscale uint8 (H, W) -> float32 (H, W, 2) pixels (x, y);
    safe to call from several threads at once.

    Args:
        algorithm: 'farneback' (params: cv2.calcOpticalFlowFarneback's, default the paper's),
            'dis' (params: preset in {ultrafast, fast, medium}) or 'tvl1' (params: those of
            cv2.optflow.DualTVL1OpticalFlow_create; needs opencv-contrib).
    """
    if algorithm == "farneback":
        settings = {**PAPER_FARNEBACK, **params}
        return lambda previous, current: cv2.calcOpticalFlowFarneback(
            previous, current, None, **settings
        )
    if algorithm == "dis":
        preset = params.pop("preset", "fast")
        if preset not in DIS_PRESETS or params:
            raise ValueError(
                f"DIS takes preset in {sorted(DIS_PRESETS)} only, got {preset}, {params}"
            )
        return _one_engine_per_thread(lambda: cv2.DISOpticalFlow_create(DIS_PRESETS[preset]))
    if algorithm == "tvl1":
        if not tvl1_available():
            raise RuntimeError(
                "algorithm='tvl1' needs OpenCV's contrib modules (cv2.optflow): install "
                "opencv-contrib-python-headless, or use 'farneback' or 'dis'"
            )
        cv2.optflow.DualTVL1OpticalFlow_create(**params)  # bad settings fail here
        return _one_engine_per_thread(lambda: cv2.optflow.DualTVL1OpticalFlow_create(**params))
    raise ValueError(f"algorithm={algorithm!r}: choose 'farneback', 'dis' or 'tvl1'")


def compute_flow(
    frames: list[np.ndarray], flow_function: FlowFunction, threads: int | None = None
) -> np.ndarray:
    """Flow from each RGB frame (H, W, 3) to the next -> float32 (N-1, H, W, 2) in pixels.

    Args:
        threads: pairs computed at once (OpenCV's flow runs on one core; it releases the GIL,
            so threads share the work exactly). Default: ``cv2.getNumThreads()``, which the
            multi-process tools set to 1 in their workers.
    """
    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    gray = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]
    pairs = list(pairwise(gray))
    threads = min(len(pairs), max(1, cv2.getNumThreads() if threads is None else threads))
    if threads == 1:
        return np.stack([flow_function(a, b) for a, b in pairs])
    with ThreadPoolExecutor(threads, thread_name_prefix="gm_plugins_flow") as pool:
        return np.stack(list(pool.map(lambda pair: flow_function(*pair), pairs)))


@TRANSFORMS.register_module()
class OpticalFlow(BaseTransform):
    """Optical flow on consecutive frames of the (subsampled, aligned) clip.

    Required keys:
        - imgs (list of (H, W, 3) uint8 RGB, N >= 2)

    Added keys:
        - flows (float32 (N-1, H, W, 2): x, y flow from frame i to i+1 in pixels, clipped to
          +-bound; it stays in pixels until the cache quantises it)
        - flow_bound (float, the clipping bound in pixels), flow_algorithm (str)

    Args:
        algorithm (str): 'farneback' (the paper), 'dis' (faster) or 'tvl1' (opencv-contrib).
            Defaults to 'farneback'.
        bound (float): clipping bound in pixels. Defaults to 20 (the paper).
        **params: settings of the algorithm (see :func:`make_flow_function`); Farneback's
            default to the paper's.
    """

    def __init__(self, algorithm: str = "farneback", bound: float = 20.0, **params) -> None:
        if bound <= 0:
            raise ValueError(f"bound must be positive, got {bound}")
        self.algorithm = algorithm
        self.bound = float(bound)
        self.params = params
        # Built here to fail early on bad settings, rebuilt lazily after pickling.
        self._flow_function: FlowFunction | None = make_flow_function(algorithm, **dict(params))

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _flow_function=None)  # OpenCV objects do not pickle

    def compute(self, frames: list[np.ndarray]) -> np.ndarray:
        """Flow between consecutive RGB frames (H, W, 3) -> float32 (N-1, H, W, 2) pixels,
        clipped to +-bound."""
        if self._flow_function is None:
            self._flow_function = make_flow_function(self.algorithm, **dict(self.params))
        return np.clip(compute_flow(frames, self._flow_function), -self.bound, self.bound)

    def transform(self, results: dict) -> dict:
        results["flows"] = self.compute(results["imgs"])
        results["flow_bound"] = self.bound
        results["flow_algorithm"] = self.algorithm
        return results

    def __repr__(self) -> str:
        params = "".join(f", {key}={value!r}" for key, value in self.params.items())
        return (
            f"{self.__class__.__name__}(algorithm='{self.algorithm}', bound={self.bound}{params})"
        )
