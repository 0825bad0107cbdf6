"""Transforms that turn one cached window into the model's inputs (one or two streams)."""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import torch
from mmaction.registry import TRANSFORMS
from mmaction.structures import ActionDataSample
from mmcv.transforms import BaseTransform

from gm_plugins.datasets.cache import META_FILE, CachedVideo, dequantise_flow, read_cached_video


class _OpenVideos:
    """A small per-process LRU of memory-mapped cached videos (workers fork, so each has one).

    An entry is known by its folder and by the identity of its ``meta.json`` (inode and
    modification time), so an entry rewritten since it was opened (an atomic swap gives new
    files) is opened afresh instead of being read from the old memory maps.
    """

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._videos: OrderedDict[tuple[str, str], tuple[tuple[int, int], CachedVideo]] = (
            OrderedDict()
        )

    def get(self, cache_root: str, subject_id: str) -> CachedVideo:
        key = (str(cache_root), subject_id)
        try:
            stat = os.stat(os.path.join(cache_root, subject_id, META_FILE))
            identity = (stat.st_ino, stat.st_mtime_ns)
        except OSError:
            identity = (-1, -1)  # read_cached_video names the missing entry and the fix
        known = self._videos.get(key)
        if known is not None and known[0] == identity:
            self._videos.move_to_end(key)
            return known[1]
        video = read_cached_video(cache_root, subject_id)
        self._videos[key] = (identity, video)
        self._videos.move_to_end(key)
        if len(self._videos) > self.capacity:
            self._videos.popitem(last=False)
        return video


_OPEN_VIDEOS = _OpenVideos()


#: The modalities a cached window holds, in the order they are packed.
STREAMS = ("rgb", "flow")


def _check_streams(owner: str, streams) -> tuple[str, ...]:
    streams = tuple(streams)
    if not streams or set(streams) - set(STREAMS) or len(set(streams)) != len(streams):
        raise ValueError(f"{owner}: streams must be a non-empty subset of {STREAMS}, got {streams}")
    return streams


@TRANSFORMS.register_module()
class LoadCachedWindow(BaseTransform):
    """Read the RGB frames and/or flow fields of one window from the preprocessing cache.

    Required keys: ``cache_root`` and ``subject_id`` (or ``cached_video``: a video already
    open or held in memory, e.g. by :func:`gm_plugins.preprocess.streaming.
    preprocess_in_memory` for inference), ``frame_positions`` ((L + 1,) positions in the
    cached frames, see :func:`gm_plugins.datasets.windows.window_positions`).

    Added keys: ``rgb`` uint8 (T, S, S, 3) and/or ``flow`` float32 (L, S, S, 2) in [-1, 1], as
    ``streams`` asks; ``img_shape`` (S, S).

    Args:
        rgb_frames: T, how many RGB frames to take around the window's middle (paper: 1).
        jitter: in training, shift the RGB frame(s) by up to this many cached frames at random,
            so the spatial stream sees more than one frame per window.
        streams: which modalities to read; a single-stream model names its one (``("rgb",)``
            or ``("flow",)``), and :class:`PackStreamInputs` packs what was read.
    """

    def __init__(
        self, rgb_frames: int = 1, jitter: int = 0, streams: tuple[str, ...] = STREAMS
    ) -> None:
        if rgb_frames < 1 or jitter < 0:
            raise ValueError(f"rgb_frames must be >= 1 and jitter >= 0, got {rgb_frames}, {jitter}")
        self.rgb_frames = rgb_frames
        self.jitter = jitter
        self.streams = _check_streams(type(self).__name__, streams)

    def transform(self, results: dict) -> dict:
        video = results.get("cached_video")
        if video is None:
            video = _OPEN_VIDEOS.get(results["cache_root"], results["subject_id"])
        positions = np.asarray(results["frame_positions"])
        if "rgb" in self.streams:
            results["rgb"] = np.asarray(video.frames[self._rgb_positions(positions, results)])
            results["img_shape"] = results["rgb"].shape[1:3]
        if "flow" in self.streams:
            results["flow"] = dequantise_flow(np.asarray(video.flow[positions[:-1]]))
            results["img_shape"] = results["flow"].shape[1:3]
        return results

    def _rgb_positions(self, positions: np.ndarray, results: dict) -> np.ndarray:
        middle = (len(positions) - 1) // 2
        if self.jitter and not results.get("test_mode", True):
            middle += np.random.randint(-self.jitter, self.jitter + 1)
        first = middle - (self.rgb_frames - 1) // 2
        first = int(np.clip(first, 0, len(positions) - self.rgb_frames))
        return positions[first : first + self.rgb_frames]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rgb_frames={self.rgb_frames}, jitter={self.jitter}, "
            f"streams={self.streams})"
        )


@TRANSFORMS.register_module()
class PackStreamInputs(BaseTransform):
    """Pack a window as ``dict(inputs=dict(rgb?, flow?), data_samples=ActionDataSample)``.

    Packs every stream the results hold (both for the two-stream model, one for a single-stream
    model whose loader read only that one), or exactly ``streams`` when given.

    Required keys: ``subject_id``, ``window_index``, and ``rgb`` and/or ``flow``; ``label``
    (absent or None when classifying an unlabelled video: no ``gt_label`` is set).

    Produces ``rgb`` uint8 tensor (T, 3, S, S) and/or ``flow`` float32 tensor (L, 2, S, S); the
    data sample holds ``gt_label`` and the metainfo ``subject_id``, ``window_index``,
    ``window_start``, ``img_shape``.

    Args:
        streams: which modalities to pack; None (default) packs every one present. A named
            stream that is missing is an error.
    """

    def __init__(self, streams: tuple[str, ...] | None = None) -> None:
        self.streams = None if streams is None else _check_streams(type(self).__name__, streams)

    def transform(self, results: dict) -> dict:
        streams = self.streams or tuple(s for s in STREAMS if s in results)
        if not streams:
            raise KeyError(f"{type(self).__name__}: neither 'rgb' nor 'flow' is loaded")
        inputs = {}
        for stream in streams:
            if stream not in results:
                raise KeyError(f"{type(self).__name__}: '{stream}' is missing; load it first")
            array = np.ascontiguousarray(np.asarray(results[stream]).transpose(0, 3, 1, 2))
            inputs[stream] = torch.from_numpy(array)
        sample = ActionDataSample()
        if results.get("label") is not None:
            sample.set_gt_label(int(results["label"]))
        sample.set_metainfo(
            dict(
                subject_id=results["subject_id"],
                window_index=int(results["window_index"]),
                window_start=int(results.get("window_start", -1)),
                img_shape=tuple(results.get("img_shape", ())),
            )
        )
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(streams={self.streams})"
