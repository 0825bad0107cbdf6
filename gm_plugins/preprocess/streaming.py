"""Run a preprocessing chain on one video: in memory, or streamed into the cache.

A chain (``preprocess_pipeline`` of a config) is DecodeFrames, optionally BackgroundRemoval,
PoseAlignment or LetterboxFrames, OpticalFlow and optionally InfantPresenceGate. The same
transform objects serve two drivers:

* :func:`preprocess_video` runs them one after the other on the whole clip in memory
  (evaluation and visualisation tools, short clips);
* :func:`preprocess_to_cache` (and :func:`preprocess_in_memory`, which keeps the same entry in
  memory for inference) streams the video through them in two passes so that memory does not
  grow with the length or resolution of the recording: pass 1 decodes the keyframes only
  and estimates the body position (one transform per video); pass 2 decodes the sampled frames
  in chunks, removes the background, warps, computes flow and appends everything to the cache
  entry on disk. Chunks hold a multiple of the segmentation batch, so every frame meets the
  models in the same batches as in memory.

Both write the same cache entry (:func:`cache_record` + :mod:`gm_plugins.datasets.cache`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mmengine.registry import FUNCTIONS

from gm_plugins.compat import library_scope
from gm_plugins.datasets.cache import (
    CachedVideo,
    CacheEntryWriter,
    MemoryEntryWriter,
    check_entry_arrays,
    quantise_flow,
    read_meta,
)
from gm_plugins.preprocess.quality import QualityGate

PipelineLike = Sequence[dict | Callable] | Callable
DEFAULT_CHUNK_FRAMES = 64
CHUNK_BYTES = 128 * 2**20  # decoded frames held at once in pass 2 (at least one model batch)
# Pass 1 keeps the sampled frames for pass 2 (which then decodes nothing) while they fit here:
# a minute at 320x240 and 6 fps is 83 MB.
KEEP_DECODED_BYTES = 256 * 2**20
# Beyond that it writes them to an anonymous temporary file (gone when closed or when the process
# dies) while the file stays within SPILL_BYTES and its disk keeps SPILL_FREE_BYTES free: a
# minute at 1920x1080 and 6 fps is 2.2 GB, written once instead of decoded twice (about 18 s on
# 2 cores). Longer or larger videos are decoded twice.
SPILL_BYTES = 8 * 2**30
SPILL_FREE_BYTES = 2 * 2**30
_SPILL_CHECK_BYTES = 256 * 2**20


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
    """Run the chain on a whole video in memory and return its results dict.

    With the usual chain the results hold ``imgs`` (N aligned RGB frames), ``flows`` (float32
    (N-1, S, S, 2) pixels), ``frame_inds``, ``timestamps``, ``alignment_matrix`` (N, 2, 3),
    ``body_frame``, ``alignment_fallback`` and ``quality``.
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


def _video_meta(results: dict, video: str, out_size: int) -> dict:
    """The meta of a cache entry from the decoding, alignment, flow and quality results."""
    return dict(
        video=os.fspath(video),
        frame_indices=[int(i) for i in results["frame_inds"]],
        timestamps=[float(t) for t in results["timestamps"]],
        fps=float(results["fps"]),
        sample_fps=float(results["sample_fps"]),
        total_frames=int(results["total_frames"]),
        frame_step=results.get("frame_step"),
        original_shape=[int(v) for v in results["original_shape"]],
        source_shape=[int(v) for v in results.get("source_shape", results["original_shape"])],
        decode_scale=float(results.get("decode_scale", 1.0)),
        out_size=int(out_size),
        alignment=_alignment_meta(results),
        flow=dict(algorithm=results.get("flow_algorithm"), bound=float(results["flow_bound"])),
        quality=results.get("quality") or _quality(results, None),
    )


def _quality(results: dict, gate: QualityGate | None) -> dict:
    """The quality record of a results dict (see :class:`InfantPresenceGate`)."""
    from gm_plugins.preprocess.transforms.quality_gate import InfantPresenceGate

    step = InfantPresenceGate()
    step.gate = gate
    return step.transform(dict(results))["quality"]


def cache_record(results: dict, video: str) -> dict:
    """Arrays and meta for :func:`gm_plugins.datasets.cache.write_cached_video`.

    Returns:
        dict with ``frames`` uint8 (N, S, S, 3), ``flow_quantised`` uint8 (N-1, S, S, 2),
        ``matrices`` float32 (N, 2, 3) and a JSON-ready ``meta``; with pose estimates in
        ``results``, also ``keypoints`` float32 (M, K, 3) (x, y in aligned pixels, score) and
        ``meta['keypoint_positions']``.
    """
    frames = np.stack(results["imgs"]).astype(np.uint8)
    matrices = results.get("alignment_matrix")
    if matrices is None:
        matrices = np.repeat(np.eye(2, 3, dtype=np.float32)[None], len(frames), 0)
    meta = _video_meta(results, video, frames.shape[1])
    record = dict(
        frames=frames,
        flow_quantised=quantise_flow(results["flows"], float(results["flow_bound"])),
        matrices=np.asarray(matrices, np.float32),
        meta=meta,
    )
    if results.get("pose_keypoints") is not None:
        record["keypoints"], meta["keypoint_positions"] = _keypoint_record(results)
    return record


def _keypoint_record(results: dict) -> tuple[np.ndarray, list[int]]:
    positions = np.asarray(results["pose_frame_positions"], np.int64)
    matrices = np.asarray(results["alignment_matrix"], np.float32)[positions]
    return (
        aligned_keypoints(results["pose_keypoints"], results["pose_scores"], matrices),
        positions.tolist(),
    )


def aligned_keypoints(
    keypoints: np.ndarray, scores: np.ndarray, matrices: np.ndarray
) -> np.ndarray:
    """Source-pixel estimates (M, K, 2) with scores (M, K) -> (M, K, 3) in aligned pixels."""
    from gm_plugins.preprocess.geometry import transform_points

    points = np.stack([transform_points(m, k) for m, k in zip(matrices, keypoints, strict=True)])
    return np.concatenate([points, np.asarray(scores)[..., None]], -1).astype(np.float32)


@dataclass
class ChainSteps:
    """The steps of a chain that :func:`preprocess_to_cache` can stream."""

    decode: object
    background: object | None
    alignment: object
    flow: object
    gate: object | None


def streamable_steps(chain: Callable) -> ChainSteps | None:
    """The chain's steps by role, or None when it cannot be streamed (then it runs in memory).

    Streamable: DecodeFrames, [BackgroundRemoval without temporal smoothing], PoseAlignment or
    LetterboxFrames, OpticalFlow, [InfantPresenceGate], in this order.
    """
    transforms = list(getattr(chain, "transforms", []))
    names = [type(step).__name__ for step in transforms]
    roles = dict(zip(names, transforms, strict=True))
    pattern = [name for name in names if name != "InfantPresenceGate"]
    if names.count("InfantPresenceGate") > 1 or (
        "InfantPresenceGate" in names and names[-1] != "InfantPresenceGate"
    ):
        return None
    if pattern[:1] != ["DecodeFrames"] or pattern[-1:] != ["OpticalFlow"]:
        return None
    middle = pattern[1:-1]
    if middle and middle[0] == "BackgroundRemoval":
        if roles["BackgroundRemoval"].temporal_smoothing != 1:
            return None
        middle = middle[1:]
    if middle not in (["PoseAlignment"], ["LetterboxFrames"]):
        return None
    return ChainSteps(
        decode=roles["DecodeFrames"],
        background=roles.get("BackgroundRemoval"),
        alignment=roles[middle[0]],
        flow=roles["OpticalFlow"],
        gate=roles.get("InfantPresenceGate"),
    )


def _sampled_frames(decode, path: str, info: dict) -> Iterator[tuple[int, float, np.ndarray]]:
    """The decode step's sampled frames, one at a time; ``info`` gets the sampler and count."""
    from gm_plugins.preprocess.transforms.decoding import iter_sampled_frames

    target_fps = None if decode.frame_step else decode.target_fps
    return iter_sampled_frames(
        path,
        target_fps,
        decode.backend,
        frame_step=decode.frame_step,
        info=info,
        max_side=getattr(decode, "max_side", None),
    )


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _SpilledFrames:
    """Decoded frames of one shape in an anonymous temporary file, read back in order."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        # open across both passes; closed by close() or after iterating
        self.file = tempfile.TemporaryFile(prefix="gm_plugins_frames_")  # noqa: SIM115
        self.shape = tuple(shape)
        self.count = 0
        self.nbytes = 0
        self._checked = 0

    @classmethod
    def start(cls, frames: list[np.ndarray]) -> _SpilledFrames | None:
        """Move ``frames`` (emptied) into a new file; None when spilling is off or has no room
        (or the temporary folder is in memory, where spilling would not save any)."""
        if SPILL_BYTES <= 0 or sum(frame.nbytes for frame in frames) > SPILL_BYTES:
            return None
        if _in_memory_filesystem(tempfile.gettempdir()):
            return None
        spilled = cls(frames[0].shape)
        if not spilled.has_room():
            spilled.close()
            return None
        for frame in _drain(frames):
            spilled.append(frame)
        return spilled

    def append(self, frame: np.ndarray) -> None:
        if frame.shape != self.shape:
            raise ValueError(f"frame of shape {frame.shape} among frames of {self.shape}")
        self.file.write(np.ascontiguousarray(frame, dtype=np.uint8).data)
        self.count += 1
        self.nbytes += frame.nbytes

    def has_room(self) -> bool:
        """Within SPILL_BYTES, and SPILL_FREE_BYTES left on the disk (checked every 256 MiB)."""
        if self.nbytes > SPILL_BYTES:
            return False
        if self.nbytes and self.nbytes - self._checked < _SPILL_CHECK_BYTES:
            return True
        self._checked = self.nbytes
        return shutil.disk_usage(tempfile.gettempdir()).free > SPILL_FREE_BYTES

    def __iter__(self) -> Iterator[np.ndarray]:
        """The frames in order (writable arrays), then the file is closed."""
        try:
            self.file.flush()
            self.file.seek(0)
            for _ in range(self.count):
                frame = np.empty(self.shape, np.uint8)
                if self.file.readinto(memoryview(frame).cast("B")) != frame.nbytes:
                    raise OSError("the temporary file of decoded frames was cut short")
                yield frame
        finally:
            self.close()

    def close(self) -> None:
        self.file.close()


def _in_memory_filesystem(folder: str) -> bool:
    """Whether ``folder`` lies on tmpfs or ramfs (Linux's /proc/mounts; False elsewhere)."""
    try:
        table = Path("/proc/mounts").read_text()
    except OSError:
        return False
    mounts = [line.split()[1:3] for line in table.splitlines() if len(line.split()) > 2]
    folder = os.path.realpath(folder)
    best, kind = "", ""
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        inside = folder == point or folder.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fstype
    return kind in ("tmpfs", "ramfs")


def _drain(frames: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The frames in order, each let go of by the list once it is taken."""
    frames.reverse()
    while frames:
        yield frames.pop()


def _plan_pass(steps: ChainSteps, path: str, keep_bytes: int | None = None) -> dict:
    """Pass 1: decode, segment and estimate the pose on the keyframes only.

    Returns the decoding results (no ``imgs``) and the alignment plan; while all sampled
    frames fit in ``keep_bytes`` (default ``KEEP_DECODED_BYTES``) they are kept as
    ``decoded_frames`` for pass 2, beyond that in a temporary file (``SPILL_BYTES``).
    """
    keep_bytes = KEEP_DECODED_BYTES if keep_bytes is None else keep_bytes
    from gm_plugins.preprocess.transforms.alignment import (
        PoseAlignment,
        keyframe_positions,
        letterbox_matrix,
        person_boxes,
    )
    from gm_plugins.preprocess.transforms.decoding import sampling_record

    info: dict = {}
    indices, times, keyframes = [], [], []
    estimates: list[tuple[np.ndarray, np.ndarray]] = []
    boxes: list[np.ndarray] = []
    frame_shape = None
    pose = steps.alignment if isinstance(steps.alignment, PoseAlignment) else None
    interval = pose.keyframe_interval if pose is not None else 1
    batch = pose.batch_size if pose is not None else 1

    def estimate(frames: list[np.ndarray]) -> None:
        if steps.background is not None:
            masked = steps.background.mask_frames(frames)
            boxes.extend(masked.boxes)
            if pose.pose_input == "masked":
                frames = masked.frames
        box_rows = boxes[-len(frames) :] if steps.background is not None else None
        size = (frames[0].shape[1], frames[0].shape[0])
        person = person_boxes(box_rows, len(frames), size)
        estimates.append(pose.estimate_keypoints(frames, person))

    kept: list[np.ndarray] | _SpilledFrames | None = []
    kept_bytes = 0
    for index, timestamp, frame in _sampled_frames(steps.decode, path, info):
        if frame_shape is None:
            frame_shape = frame.shape[:2]
        if kept is not None:
            kept.append(frame)
            kept_bytes += frame.nbytes
            if isinstance(kept, list) and kept_bytes > keep_bytes:
                kept = _SpilledFrames.start(kept)
            elif isinstance(kept, _SpilledFrames) and not kept.has_room():
                kept.close()
                kept = None
        is_key = not indices or index // interval != indices[-1] // interval
        indices.append(index)
        times.append(timestamp)
        if pose is not None and is_key:
            keyframes.append(frame)
            if len(keyframes) == batch:
                estimate(keyframes)
                keyframes = []
    results = dict(
        sampling_record(
            path,
            info,
            indices,
            times,
            frame_shape,
            steps.decode.min_frames,
            steps.decode.frame_step,
        ),
        filename=path,
        decoded_frames=kept,
    )
    height, width = frame_shape
    if pose is None:
        matrix = letterbox_matrix(width, height, steps.alignment.out_size)
        results.update(
            alignment_matrix=np.repeat(matrix[None], len(indices), 0),
            alignment_mode="letterbox",
            alignment_fallback=None,
        )
        return results
    if keyframes:
        estimate(keyframes)
    positions = keyframe_positions(results["frame_inds"], interval)
    keypoints = np.concatenate([k for k, _ in estimates])
    scores = np.concatenate([s for _, s in estimates])
    plan = pose.plan_from_estimates(
        results["frame_inds"],
        keypoints,
        scores,
        np.stack(boxes) if steps.background is not None else None,
        (width, height),
        path,
    )
    assert len(positions) == len(keypoints)
    results.update(plan)
    return results


def _write_pass(
    steps: ChainSteps,
    path: str,
    results: dict,
    writer: CacheEntryWriter | MemoryEntryWriter,
    chunk_frames: int,
) -> None:
    """Pass 2: decode the sampled frames again in chunks; mask, warp, flow, append."""
    from gm_plugins.preprocess.transforms.alignment import warp_frames
    from gm_plugins.preprocess.transforms.background import SceneChanges, frame_brightness

    matrices = results["alignment_matrix"]
    out_size = steps.alignment.out_size
    measured: dict[str, list[np.ndarray]] = {}  # results key -> per-chunk measurements
    scene_changes = SceneChanges()
    previous: np.ndarray | None = None
    position = 0
    decoded = results.pop("decoded_frames", None)
    if isinstance(decoded, _SpilledFrames):
        frames = iter(decoded)
    elif decoded is not None:
        frames = _drain(decoded)
    else:
        frames = (frame for _, _, frame in _sampled_frames(steps.decode, path, {}))
    keep = getattr(writer, "keep_original", None)  # one source frame the caller wants to see
    for chunk in _chunks(frames, chunk_frames):
        if keep is not None and position <= keep < position + len(chunk):
            writer.original_frame = chunk[keep - position].copy()
        if steps.background is not None:
            masked = steps.background.mask_frames(chunk, changes=scene_changes)
            for key, values in masked.measurements().items():
                measured.setdefault(key, []).append(values)
            measured.setdefault("frame_brightness", []).append(frame_brightness(chunk))
            chunk = masked.frames
            del masked
        if position + len(chunk) > len(matrices):
            raise RuntimeError(f"{path}: the second decoding gave more frames than the first")
        aligned = warp_frames(chunk, matrices[position : position + len(chunk)], out_size)
        writer.add_frames(np.stack(aligned))
        pairs = ([previous] if previous is not None else []) + aligned
        if len(pairs) >= 2:
            writer.add_flow(steps.flow.compute(pairs), steps.flow.bound)
        previous = aligned[-1]
        position += len(chunk)
    if position != len(matrices):
        raise RuntimeError(
            f"{path}: the second decoding gave {position} frames, the first {len(matrices)}"
        )
    results.update({key: np.concatenate(values) for key, values in measured.items()})


def preprocess_to_cache(
    pipeline: PipelineLike,
    video_path: str | os.PathLike,
    cache_root: str | os.PathLike,
    subject_id: str,
    extra_meta: dict | None = None,
    video_name: str | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
) -> dict:
    """Preprocess one video into its cache entry (atomically) and return the meta it wrote.

    Streams the video when the chain allows it (see :func:`streamable_steps`); otherwise runs
    it in memory.

    Args:
        pipeline: the chain (configs or a built chain).
        video_path: the video file.
        cache_root, subject_id: where the entry goes.
        extra_meta: added to the meta (e.g. ``label``, ``environment``).
        video_name: what meta records as ``video`` (default: ``video_path``).
        chunk_frames: sampled frames per chunk in pass 2, at most what fits in
            ``CHUNK_BYTES`` (128 MiB) at the video's size, then rounded up to a multiple of the
            segmentation batch.
    """

    def open_writer(num_frames: int, size: int) -> CacheEntryWriter:
        return CacheEntryWriter(cache_root, subject_id, num_frames, size)

    _preprocess(pipeline, video_path, open_writer, extra_meta, video_name, chunk_frames)
    return read_meta(cache_root, subject_id)


def preprocess_in_memory(
    pipeline: PipelineLike,
    video_path: str | os.PathLike,
    subject_id: str = "video",
    extra_meta: dict | None = None,
    video_name: str | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    keep_original: str | None = None,
) -> CachedVideo:
    """Preprocess one video exactly as :func:`preprocess_to_cache` does, but keep the entry in
    memory (no cache folder): the returned video holds the same uint8 frames (N, S, S, 3),
    quantised flow (N-1, S, S, 2), matrices, keypoints and meta the cache entry would.

    Args:
        keep_original: ``'middle'`` also keeps the decoded source frame (H, W, 3) of the middle
            sampled frame as ``original_frame`` (streamed chains only; None otherwise), for a
            report, without decoding the video again.
    """

    def open_writer(num_frames: int, size: int) -> MemoryEntryWriter:
        writer = MemoryEntryWriter(subject_id, num_frames, size)
        if keep_original == "middle":
            writer.keep_original = num_frames // 2
        return writer

    return _preprocess(pipeline, video_path, open_writer, extra_meta, video_name, chunk_frames)


def _preprocess(
    pipeline: PipelineLike,
    video_path: str | os.PathLike,
    open_writer: Callable[[int, int], CacheEntryWriter | MemoryEntryWriter],
    extra_meta: dict | None,
    video_name: str | None,
    chunk_frames: int,
):
    """The one driver of both: returns what the writer's ``commit`` returns."""
    chain = build_preprocess_pipeline(pipeline)
    path = os.fspath(video_path)
    name = video_name if video_name is not None else path
    steps = streamable_steps(chain)
    if steps is None:
        record = cache_record(preprocess_video(chain, path), name)
        record["meta"].update(extra_meta or {})
        frames = check_entry_arrays(str(name), record["frames"], record["flow_quantised"])
        with open_writer(len(frames), frames.shape[1]) as writer:
            writer.add_frames(frames)
            writer.add_quantised_flow(record["flow_quantised"])
            return writer.commit(record["matrices"], record["meta"], record.get("keypoints"))
    results = _plan_pass(steps, path)
    height, width = results["original_shape"][:2]
    chunk_frames = min(chunk_frames, max(1, CHUNK_BYTES // (height * width * 3)))
    if steps.background is not None:
        batch = steps.background.batch_size
        chunk_frames = max(batch, -(-chunk_frames // batch) * batch)
    num_frames = len(results["frame_inds"])
    with open_writer(num_frames, steps.alignment.out_size) as writer:
        _write_pass(steps, path, results, writer, chunk_frames)
        results.update(flow_bound=steps.flow.bound, flow_algorithm=steps.flow.algorithm)
        gate = steps.gate.gate if steps.gate is not None else None
        results["quality"] = _quality(results, gate)
        meta = _video_meta(results, name, steps.alignment.out_size)
        meta.update(extra_meta or {})
        keypoints = None
        if results.get("pose_keypoints") is not None:
            keypoints, meta["keypoint_positions"] = _keypoint_record(results)
        return writer.commit(results["alignment_matrix"], meta, keypoints)


# The dataset's online path (GMDataset(preprocess_pipeline=...)) reaches the driver through the
# registry, so the datasets package does not import this one.
FUNCTIONS.register_module(name="gm_build_preprocess_pipeline", module=build_preprocess_pipeline)
FUNCTIONS.register_module(name="gm_preprocess_to_cache", module=preprocess_to_cache)
