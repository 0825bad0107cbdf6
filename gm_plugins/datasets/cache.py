"""The preprocessing cache: the one module that writes and reads it.

Layout, one folder per video::

    CACHE/<subject_id>/frames.npy    uint8 (N, S, S, 3)  aligned, background-removed RGB frames
                      /flow.npy      uint8 (N-1, S, S, 2) flow from frame i to i+1, quantised
                      /matrices.npy  float32 (N, 2, 3)   source pixel -> aligned pixel, per frame
                      /keypoints.npy float32 (M, K, 3)   optional: pose estimates (x, y in aligned
                                                         pixels, score) on M cached frames
                      /meta.json     source frame indices and timestamps, fps, sample_fps, body
                                     frame, flow settings, quality record (written last)

``CACHE/preprocess_pipeline.json`` records the chain that wrote the cache and the size and
sha256 of every config and checkpoint file it loads, so a rerun with another chain (say, an
ablation's) or a retrained model saved at the same path cannot mix its videos into it.

The N cached frames are the source frames ``frame_indices`` sampled at ``sample_fps`` (their
times in seconds in ``timestamps``), so windows of any start stride and span can be cut later
without preprocessing again. Flow is stored as ``q = 128 + round(127 * f / bound)`` for ``f`` in
pixels clipped to ``+-bound``: zero flow is exactly 128 and ``256 - q`` is the exactly negated
flow, so a horizontal flip is exact. :func:`dequantise_flow` returns ``(q - 128) / 127`` in
[-1, 1]. Flow channels are (x, y).

Writing is atomic also when an entry is replaced: a new entry is written into a staging folder
(``.staging~<id>~<host>~<pid>~<random>``); the old entry is renamed aside, the new one renamed
in, then the old one deleted. A video counts as done only when its folder holds ``meta.json``.
:func:`recover_cache` (run at the start of every preprocessing run) deletes the staging folders
of dead processes and puts back an old entry whose replacement never arrived, so a killed run
never loses a finished video nor leaves a half-written one that looks finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gm_plugins.utils.io import write_json_atomic, write_text_atomic  # noqa: F401  (re-exported)

FRAMES_FILE = "frames.npy"
FLOW_FILE = "flow.npy"
MATRICES_FILE = "matrices.npy"
KEYPOINTS_FILE = "keypoints.npy"
META_FILE = "meta.json"
PIPELINE_FILE = "preprocess_pipeline.json"
CACHE_FORMAT = 2
STAGING_PREFIX = ".staging~"
REPLACED_PREFIX = ".replaced~"
_MODEL_FILE_KEYS = ("config", "checkpoint")


class CacheFormatError(ValueError):
    """A cache folder was written by another version of the cache format."""


def subject_id_problem(subject_id: object) -> str | None:
    """Why ``subject_id`` cannot name a cache folder (None when it can).

    An id becomes a folder name, so it must be a non-empty, single path component: no path
    separator, not "." or "..", no leading dot (staging folders start with one), no control
    characters, at most 128 characters.
    """
    if not isinstance(subject_id, str) or not subject_id.strip():
        return "subject_id is empty"
    if subject_id != subject_id.strip():
        return f"subject_id {subject_id!r} has leading or trailing spaces"
    if subject_id in (".", ".."):
        return f"subject_id {subject_id!r} is not a file name"
    if "/" in subject_id or "\\" in subject_id or (os.altsep and os.altsep in subject_id):
        return f"subject_id {subject_id!r} contains a path separator"
    if subject_id.startswith("."):
        return f"subject_id {subject_id!r} starts with a dot"
    if any(ord(char) < 32 for char in subject_id):
        return f"subject_id {subject_id!r} contains control characters"
    if len(subject_id) > 128:
        return f"subject_id {subject_id[:20]!r}... is longer than 128 characters"
    return None


def check_subject_id(subject_id: object) -> str:
    """Return ``subject_id`` if it can name a cache folder; raise ValueError saying why not."""
    problem = subject_id_problem(subject_id)
    if problem is not None:
        raise ValueError(f"{problem}: use a plain name such as 'infant_007'")
    return subject_id  # type: ignore[return-value]


def quantise_flow(flow: np.ndarray, bound: float) -> np.ndarray:
    """Flow in pixels (..., 2) -> uint8 ``128 + round(127 * f / bound)``, clipped to +-bound."""
    scaled = np.clip(np.asarray(flow, np.float32) / np.float32(bound), -1.0, 1.0)
    return (np.round(scaled * 127.0) + 128.0).astype(np.uint8)


def dequantise_flow(quantised: np.ndarray) -> np.ndarray:
    """uint8 flow -> float32 in [-1, 1] (1 means ``bound`` pixels; 128 is exactly 0)."""
    return (quantised.astype(np.float32) - 128.0) / 127.0


def file_fingerprint(path: str | os.PathLike) -> dict:
    """``dict(size=bytes, sha256=hex)`` of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return dict(size=os.path.getsize(path), sha256=digest.hexdigest())


def chain_record(pipeline: list[dict]) -> dict:
    """What identifies a chain: its steps and the fingerprint of every model file they load.

    Args:
        pipeline: the ``preprocess_pipeline`` step dicts.
    """
    steps = json.loads(json.dumps(list(pipeline), default=str))  # tuples -> lists, as stored
    files = {}
    for step in steps:
        for key in _MODEL_FILE_KEYS:
            value = step.get(key) if isinstance(step, dict) else None
            if isinstance(value, str) and os.path.isfile(value):
                files[value] = file_fingerprint(value)
    return dict(format=CACHE_FORMAT, pipeline=steps, files=files)


def claim_cache(cache_root: str | os.PathLike, pipeline: list[dict]) -> None:
    """Record the chain that writes ``cache_root``; refuse a cache written by another chain.

    Raises:
        ValueError: naming the cache and what differs (steps, or a model file whose size or
            sha256 changed), with the fix.
    """
    root = Path(cache_root)
    record_path = root / PIPELINE_FILE
    wanted = chain_record(pipeline)
    if record_path.is_file():
        stored = json.loads(record_path.read_text())
        if not isinstance(stored, dict) or stored.get("format") != CACHE_FORMAT:
            raise CacheFormatError(
                f"{root} was written by an older gm_plugins (cache format "
                f"{stored.get('format', 1) if isinstance(stored, dict) else 1}, now "
                f"{CACHE_FORMAT}): delete {root} and preprocess again"
            )
        differences = _step_differences(stored["pipeline"], wanted["pipeline"])
        differences += _file_differences(stored["files"], wanted["files"])
        if differences:
            raise ValueError(
                f"{root} was written by another preprocess_pipeline ({'; '.join(differences)}): "
                f"use another --out for this chain, or delete {root} to rebuild it"
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record_path, wanted)


def _step_differences(stored: list[dict], wanted: list[dict]) -> list[str]:
    """'step i (Type): key=old -> new' for every step that differs."""
    described = []
    for index, (old, new) in enumerate(itertools.zip_longest(stored, wanted, fillvalue={})):
        if old == new:
            continue
        if old.get("type") != new.get("type"):
            described.append(f"step {index}: {old.get('type')} -> {new.get('type')}")
            continue
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        changes = ", ".join(f"{k}={old.get(k)!r} -> {new.get(k)!r}" for k in keys)
        described.append(f"step {index} ({old['type']}): {changes}")
    return described


def _file_differences(stored: dict, wanted: dict) -> list[str]:
    described = []
    for path in sorted(set(stored) | set(wanted)):
        old, new = stored.get(path), wanted.get(path)
        if old == new:
            continue
        if old is None or new is None:
            described.append(f"{path} {'appeared' if old is None else 'is missing now'}")
        else:
            described.append(
                f"{path} changed since the cache was written (size {old['size']} -> "
                f"{new['size']}, sha256 {old['sha256'][:12]} -> {new['sha256'][:12]})"
            )
    return described


def is_cached(cache_root: str | os.PathLike, subject_id: str) -> bool:
    """Whether ``subject_id`` was completely written to the cache."""
    return (Path(cache_root) / check_subject_id(subject_id) / META_FILE).is_file()


def _owner_tag() -> str:
    return f"{socket.gethostname().replace('~', '-')}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


def _owner_alive(name: str) -> bool:
    """Whether the process that named a staging/replaced folder may still be running."""
    try:
        _, host, pid, _ = name.rsplit("~", 3)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname().replace("~", "-"):
        return True  # another machine's: never touch it
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_cache(cache_root: str | os.PathLike) -> list[str]:
    """Clean what killed writers left in ``cache_root``; returns what was done, one line each.

    Staging folders of dead processes are deleted (they never held a finished entry). An old
    entry renamed aside whose replacement was not renamed in is put back; one whose
    replacement arrived is deleted.
    """
    root = Path(cache_root)
    if not root.is_dir():
        return []
    actions = []
    for folder in sorted(root.iterdir()):
        name = folder.name
        if not name.startswith((STAGING_PREFIX, REPLACED_PREFIX)) or _owner_alive(name):
            continue
        subject_id = name.split("~", 2)[1] if name.count("~") >= 4 else None
        if name.startswith(REPLACED_PREFIX) and subject_id and not is_cached(root, subject_id):
            if (root / subject_id).exists():
                shutil.rmtree(root / subject_id)
            os.replace(folder, root / subject_id)
            actions.append(f"restored {subject_id} (its replacement was never completed)")
            continue
        shutil.rmtree(folder, ignore_errors=True)
        actions.append(f"removed {name} (left by a killed writer)")
    return actions


class _NpyWriter:
    """Writes a ``.npy`` file of a known shape chunk by chunk (constant memory)."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        self.written = 0
        self._handle = open(path, "wb")  # noqa: SIM115  (closed by close(), chunks come later)
        header = dict(descr=np.lib.format.dtype_to_descr(self.dtype), fortran_order=False)
        np.lib.format.write_array_header_1_0(self._handle, dict(header, shape=shape))

    def append(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if chunk.shape[1:] != self.shape[1:] or self.written + len(chunk) > self.shape[0]:
            raise ValueError(
                f"{self.path.name}: chunk {chunk.shape} does not fit {self.shape} after "
                f"{self.written} rows"
            )
        self._handle.write(chunk.tobytes())
        self.written += len(chunk)

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if self.written != self.shape[0]:
            raise ValueError(f"{self.path.name}: {self.written} of {self.shape[0]} rows written")


def checked_entry(
    subject_id: str,
    num_frames: int,
    matrices: np.ndarray,
    meta: dict,
    keypoints: np.ndarray | None,
) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """Check what :meth:`CacheEntryWriter.commit` is given; returns matrices float32 (N, 2, 3),
    the meta as stored (with ``subject_id``, ``num_frames``, ``format``) and keypoints float32
    (M, K, 3) or None."""
    if len(meta.get("frame_indices", ())) != num_frames or "fps" not in meta:
        raise ValueError(f"{subject_id}: meta needs 'fps' and one frame index per cached frame")
    matrices = np.asarray(matrices, np.float32)
    if matrices.shape != (num_frames, 2, 3):
        raise ValueError(f"{subject_id}: matrices must be ({num_frames}, 2, 3)")
    if keypoints is not None:
        positions = meta.get("keypoint_positions", ())
        if (
            np.ndim(keypoints) != 3
            or np.shape(keypoints)[-1] != 3
            or len(positions) != len(keypoints)
        ):
            raise ValueError(
                f"{subject_id}: keypoints must be (M, K, 3) with M keypoint_positions "
                f"in meta, got {np.shape(keypoints)} and {len(positions)} positions"
            )
        keypoints = np.asarray(keypoints, np.float32)
    meta = dict(meta, subject_id=subject_id, num_frames=num_frames, format=CACHE_FORMAT)
    return matrices, meta, keypoints


class CacheEntryWriter:
    """Write one video's cache entry in chunks, then commit it atomically.

    Use as a context manager: an exception (or a kill) before :meth:`commit` leaves the cache
    as it was; the staging folder is deleted (or cleaned by :func:`recover_cache`).

    Args:
        cache_root: the cache folder (created).
        subject_id: the entry's name; must pass :func:`check_subject_id`.
        num_frames: N, the cached frames the entry will hold (N >= 2).
        frame_size: S, the side of the square cached frames.
    """

    def __init__(
        self, cache_root: str | os.PathLike, subject_id: str, num_frames: int, frame_size: int
    ) -> None:
        self.subject_id = check_subject_id(subject_id)
        if num_frames < 2 or frame_size < 1:
            raise ValueError(f"{subject_id}: need N >= 2 frames of size >= 1, got {num_frames}")
        self.root = Path(cache_root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.staging = self.root / f"{STAGING_PREFIX}{subject_id}~{_owner_tag()}"
        self.staging.mkdir()
        size = (frame_size, frame_size)
        self.frames = _NpyWriter(self.staging / FRAMES_FILE, (num_frames, *size, 3), np.uint8)
        self.flow = _NpyWriter(self.staging / FLOW_FILE, (num_frames - 1, *size, 2), np.uint8)
        self.committed = False

    def add_frames(self, frames: np.ndarray) -> None:
        """Append uint8 (n, S, S, 3) RGB frames."""
        self.frames.append(frames)

    def add_flow(self, flow_pixels: np.ndarray, bound: float) -> None:
        """Append float (n, S, S, 2) flow in pixels; quantised with :func:`quantise_flow`."""
        self.flow.append(quantise_flow(flow_pixels, bound))

    def add_quantised_flow(self, flow_quantised: np.ndarray) -> None:
        """Append uint8 (n, S, S, 2) flow already quantised."""
        self.flow.append(flow_quantised)

    def commit(self, matrices: np.ndarray, meta: dict, keypoints: np.ndarray | None = None) -> Path:
        """Check the entry, write meta last and swap the entry in; returns its path.

        Args:
            matrices: float32 (N, 2, 3).
            meta: JSON-serialisable; must hold ``frame_indices`` (N ints) and ``fps``, and
                ``keypoint_positions`` (M ints, positions in the N frames) with ``keypoints``.
            keypoints: optional float32 (M, K, 3) pose estimates (x, y, score), aligned pixels.
        """
        num_frames = self.frames.shape[0]
        self.frames.close()
        self.flow.close()
        matrices, meta, keypoints = checked_entry(
            self.subject_id, num_frames, matrices, meta, keypoints
        )
        np.save(self.staging / MATRICES_FILE, matrices)
        if keypoints is not None:
            np.save(self.staging / KEYPOINTS_FILE, keypoints)
        write_json_atomic(self.staging / META_FILE, meta)
        final = self.root / self.subject_id
        replaced = None
        if final.exists():
            replaced = self.root / f"{REPLACED_PREFIX}{self.subject_id}~{_owner_tag()}"
            os.replace(final, replaced)
        try:
            os.replace(self.staging, final)
        except BaseException:
            if replaced is not None:  # put the finished entry back before reporting
                os.replace(replaced, final)
            raise
        self.committed = True
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        return final

    def abort(self) -> None:
        """Forget the entry: delete the staging folder."""
        for writer in (self.frames, self.flow):
            if not writer._handle.closed:
                writer._handle.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> CacheEntryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.committed:
            self.abort()


class MemoryEntryWriter:
    """The in-memory twin of :class:`CacheEntryWriter` (same calls), for inference: nothing is
    written to disk and :meth:`commit` returns the entry as an :class:`InMemoryVideo`.

    Args:
        subject_id: the entry's name (recorded in its meta).
        num_frames: N, the frames the entry will hold (N >= 2).
        frame_size: S, the side of the square frames.
    """

    def __init__(self, subject_id: str, num_frames: int, frame_size: int) -> None:
        if num_frames < 2 or frame_size < 1:
            raise ValueError(f"{subject_id}: need N >= 2 frames of size >= 1, got {num_frames}")
        self.subject_id = subject_id
        self.frames = np.zeros((num_frames, frame_size, frame_size, 3), np.uint8)
        self.flow = np.zeros((num_frames - 1, frame_size, frame_size, 2), np.uint8)
        self._frames_written = 0
        self._flow_written = 0
        self.keep_original: int | None = None  # a position whose source frame to keep
        self.original_frame: np.ndarray | None = None

    @staticmethod
    def _append(target: np.ndarray, chunk: np.ndarray, written: int, what: str) -> int:
        chunk = np.asarray(chunk)
        if chunk.shape[1:] != target.shape[1:] or written + len(chunk) > len(target):
            raise ValueError(
                f"{what}: chunk {chunk.shape} does not fit ({written} of {target.shape} written)"
            )
        target[written : written + len(chunk)] = chunk
        return written + len(chunk)

    def add_frames(self, frames: np.ndarray) -> None:
        """Append uint8 (n, S, S, 3) RGB frames."""
        self._frames_written = self._append(self.frames, frames, self._frames_written, "frames")

    def add_flow(self, flow_pixels: np.ndarray, bound: float) -> None:
        """Append float (n, S, S, 2) flow in pixels; quantised with :func:`quantise_flow`."""
        self.add_quantised_flow(quantise_flow(flow_pixels, bound))

    def add_quantised_flow(self, flow_quantised: np.ndarray) -> None:
        """Append uint8 (n, S, S, 2) flow already quantised."""
        self._flow_written = self._append(self.flow, flow_quantised, self._flow_written, "flow")

    def commit(
        self, matrices: np.ndarray, meta: dict, keypoints: np.ndarray | None = None
    ) -> InMemoryVideo:
        """Check the entry as :meth:`CacheEntryWriter.commit` does and return it."""
        if self._frames_written != len(self.frames) or self._flow_written != len(self.flow):
            raise ValueError(
                f"{self.subject_id}: {self._frames_written} of {len(self.frames)} frames and "
                f"{self._flow_written} of {len(self.flow)} flow fields were written"
            )
        matrices, meta, keypoints = checked_entry(
            self.subject_id, len(self.frames), matrices, meta, keypoints
        )
        return InMemoryVideo(
            path=Path(str(meta.get("video", self.subject_id))),
            meta=meta,
            frames=self.frames,
            flow=self.flow,
            matrices=matrices,
            stored_keypoints=keypoints,
            original_frame=self.original_frame,
        )

    def __enter__(self) -> MemoryEntryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def check_entry_arrays(
    subject_id: str, frames: np.ndarray, flow_quantised: np.ndarray
) -> np.ndarray:
    """Check whole-entry arrays: frames (N, S, S, 3), flow uint8 (N-1, S, S, 2); returns frames."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] != frames.shape[2]:
        raise ValueError(f"{subject_id}: frames must be (N, S, S, 3) uint8, got {frames.shape}")
    expected_flow = (frames.shape[0] - 1, *frames.shape[1:3], 2)
    if flow_quantised.shape != expected_flow or flow_quantised.dtype != np.uint8:
        raise ValueError(
            f"{subject_id}: flow must be uint8 {expected_flow}, got "
            f"{flow_quantised.dtype} {flow_quantised.shape}"
        )
    return frames


def write_cached_video(
    cache_root: str | os.PathLike,
    subject_id: str,
    frames: np.ndarray,
    flow_quantised: np.ndarray,
    matrices: np.ndarray,
    meta: dict,
    keypoints: np.ndarray | None = None,
) -> Path:
    """Atomically write one video's cache entry from whole arrays and return its path.

    Args:
        frames: uint8 (N, S, S, 3) RGB.
        flow_quantised: uint8 (N-1, S, S, 2), see :func:`quantise_flow`.
        matrices, meta, keypoints: as for :meth:`CacheEntryWriter.commit`.
    """
    frames = check_entry_arrays(subject_id, frames, flow_quantised)
    with CacheEntryWriter(cache_root, subject_id, len(frames), frames.shape[1]) as writer:
        writer.add_frames(frames.astype(np.uint8, copy=False))
        writer.add_quantised_flow(flow_quantised)
        return writer.commit(matrices, meta, keypoints)


def read_meta(cache_root: str | os.PathLike, subject_id: str) -> dict:
    """``meta.json`` of a cached video; raises FileNotFoundError naming the fix if missing.

    Besides what the writer was given, meta holds ``quality`` (dict with ``fallback``: None or
    a reason code such as ``'no_infant'``, and the figures it was decided from).
    """
    path = Path(cache_root) / check_subject_id(subject_id)
    if not (path / META_FILE).is_file():
        raise FileNotFoundError(
            f"No preprocessed cache for {subject_id} at {path}. Run "
            f"tools/data/preprocess_videos.py CONFIG --data-root DATA --out {cache_root} first."
        )
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("format") != CACHE_FORMAT:
        raise CacheFormatError(
            f"{path} was written by an older gm_plugins (cache format {meta.get('format', 1)}, "
            f"now {CACHE_FORMAT}): delete {path.parent} and preprocess again"
        )
    return meta


@dataclass
class CachedVideo:
    """One cached video, memory-mapped: slicing reads only the frames asked for."""

    path: Path
    meta: dict
    frames: np.ndarray  # uint8 (N, S, S, 3)
    flow: np.ndarray  # uint8 (N-1, S, S, 2)

    @property
    def frame_indices(self) -> np.ndarray:
        return np.asarray(self.meta["frame_indices"], dtype=np.int64)

    @property
    def keypoints(self) -> tuple[np.ndarray, np.ndarray]:
        """Pose estimates float32 (M, K, 3) (x, y, score) and their frame positions (M,)."""
        path = self.path / KEYPOINTS_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.path} holds no keypoints.npy: preprocess with a chain that has "
                "PoseAlignment (the cache keeps its estimates)"
            )
        positions = np.asarray(self.meta["keypoint_positions"], dtype=np.int64)
        return np.load(path, mmap_mode="r"), positions


def read_cached_video(cache_root: str | os.PathLike, subject_id: str) -> CachedVideo:
    """Open a cached video; raises FileNotFoundError naming the fix if it is missing."""
    meta = read_meta(cache_root, subject_id)
    path = Path(cache_root) / subject_id
    frames = np.load(path / FRAMES_FILE, mmap_mode="r")
    flow = np.load(path / FLOW_FILE, mmap_mode="r")
    return CachedVideo(path=path, meta=meta, frames=frames, flow=flow)


@dataclass
class InMemoryVideo(CachedVideo):
    """A preprocessed video held in memory (:class:`MemoryEntryWriter`), read like a cached one."""

    matrices: np.ndarray | None = None  # float32 (N, 2, 3)
    stored_keypoints: np.ndarray | None = None  # float32 (M, K, 3)
    original_frame: np.ndarray | None = None  # uint8 (H, W, 3), the middle source frame if kept

    @property
    def keypoints(self) -> tuple[np.ndarray, np.ndarray]:
        if self.stored_keypoints is None:
            raise ValueError(f"{self.path}: the chain had no PoseAlignment, so no keypoints")
        positions = np.asarray(self.meta["keypoint_positions"], dtype=np.int64)
        return self.stored_keypoints, positions
