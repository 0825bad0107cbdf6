"""Generate a whole synthetic dataset: subjects in parallel, resumable, atomic per file.

Layout under the output directory::

    videos/<subject_id>.mp4      H.264 RGB video
    gt/<subject_id>.npz          keypoints (T, 17, 3) float32, masks (T, H, W) uint8, fps, params
    subjects.csv                 subject_id,label,environment,video
    empty_scenes.csv             subject_id,label,environment,video,scene_kind (label empty), with
                                 videos/e*.mp4 and gt/e*.npz; only with --empty-scenes N
    mmseg/{img_dir,ann_dir}/{train,val}/*.png          frames of extra subjects p0000...
    mmpose/images/{train,val}/*.png, mmpose/annotations/{train,val}.json
    meta.json                    generator version, arguments, class counts, completion

Sharded generation (``shard=(I, N)``, see :mod:`gm_plugins.utils.sharding`): each run renders the
infants, preprocessing subjects and empty scenes of its share, chosen by a hash of their ids, so
N runs on one machine or on many sharing the folder make the dataset together. The files that
describe the whole dataset (the tables, the COCO annotations, meta.json's ``complete``) are
written by whichever run finds every subject done after its own work, usually the last shard to
finish; their content depends only on the arguments, so whichever run writes them, and however
often, the bytes are the same as a one-process run's. A run without ``shard`` writes them too
once everything is there (the safe last step where a network filesystem shows other machines'
files late). :func:`check_dataset` reports what is missing.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from gm_plugins.utils.io import (
    TEMPORARY_SUFFIX,
    atomic_path,
    is_running,
    remove_stale_temporaries,
    write_csv_atomic,
    write_json_atomic,
)
from gm_plugins.utils.sharding import STALE_SECONDS, select_shard

from . import exports, writer
from .empty import EMPTY_SCENE_KINDS, EmptyScene, EmptySceneSpec, make_empty_specs
from .motion import GM_CLASSES, REFERENCE_FPS
from .subject import SubjectSpec, SyntheticSubject, make_specs

# 1.1: motion drawn on a 30 Hz reference clock (the same movement at any --fps), empty scenes.
# At --fps 30 its infants are 1.0's, so a 1.0 folder made at 30 fps resumes under 1.1.
GENERATOR_VERSION = "1.1"
_SAME_AT_REFERENCE_FPS = ("1.0",)
DATASET_GROUP, PREP_GROUP = 0, 1
SUBJECTS_TABLE, EMPTY_SCENES_TABLE = "subjects.csv", "empty_scenes.csv"
SUBJECT_COLUMNS = ["subject_id", "label", "environment", "video"]
EMPTY_SCENE_COLUMNS = [*SUBJECT_COLUMNS, "scene_kind"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines the dataset's content (``--workers`` does not)."""

    subjects: int = 36
    seconds: float = 20.0
    fps: int = 30
    width: int = 320
    height: int = 240
    seed: int = 0
    confound: float = 0.0
    prep_subjects: int = 24
    prep_frames: int = 8
    empty_scenes: int = 0

    @property
    def num_frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def validate(self) -> None:
        """Raise ValueError naming the bad argument and its fix."""
        problems = []
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 32:
            problems.append(
                f"--size {self.width}x{self.height}: use even numbers >= 32 (H.264 yuv420p), "
                "e.g. 320x240"
            )
        if not 0.0 <= self.confound <= 1.0:
            problems.append(f"--confound {self.confound}: a probability, give a value in [0, 1]")
        if self.subjects < 1:
            problems.append(f"--subjects {self.subjects}: give at least 1")
        if not 1 <= self.fps <= 240:
            problems.append(f"--fps {self.fps}: give an integer in [1, 240]")
        if self.num_frames < 2:
            problems.append(
                f"--seconds {self.seconds} at --fps {self.fps} gives under 2 frames: make it longer"
            )
        if self.seed < 0:
            problems.append(f"--seed {self.seed}: give a non-negative integer")
        if self.empty_scenes < 0:
            problems.append(f"--empty-scenes {self.empty_scenes}: give 0 or more")
        if self.prep_subjects < 0 or self.prep_frames < 1 or self.prep_frames > self.num_frames:
            problems.append(
                f"--prep-subjects {self.prep_subjects} / --prep-frames {self.prep_frames}: "
                f"give >= 0 subjects and 1..{self.num_frames} frames each"
            )
        if problems:
            raise ValueError("invalid synthetic dataset arguments:\n  " + "\n  ".join(problems))

    def arguments(self) -> dict:
        """JSON-ready arguments as stored in meta.json (size as 'WxH')."""
        args = dataclasses.asdict(self)
        args["size"] = f"{args.pop('width')}x{args.pop('height')}"
        return args


def video_path(out_dir: Path, subject_id: str) -> Path:
    return out_dir / "videos" / f"{subject_id}.mp4"


def gt_path(out_dir: Path, subject_id: str) -> Path:
    return out_dir / "gt" / f"{subject_id}.npz"


def _claim_directory(out_dir: Path, config: GeneratorConfig) -> None:
    """Refuse a directory holding something else; resume one made with the same arguments.

    Arguments added since a folder was made count with their defaults (which reproduce it).
    """
    meta_file = out_dir / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        version = meta.get("generator_version")
        if version in _SAME_AT_REFERENCE_FPS and config.fps == REFERENCE_FPS:
            version = GENERATOR_VERSION
        previous = {**GeneratorConfig().arguments(), **meta.get("arguments", {})}
        previous["generator_version"] = version
        wanted = {**config.arguments(), "generator_version": GENERATOR_VERSION}
        changed = {k: (previous.get(k), v) for k, v in wanted.items() if previous.get(k) != v}
        if changed:
            listing = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{out_dir} holds a synthetic dataset made with other arguments ({listing}); "
                "rerun with "
                "its original arguments to resume it, or choose another --out (or delete it)"
            )
    elif out_dir.exists() and any(not _is_temporary(path) for path in out_dir.iterdir()):
        # (a temporary alone is another shard writing meta.json at this moment)
        raise ValueError(
            f"{out_dir} exists, is not empty and has no meta.json: choose another --out or empty it"
        )


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX)


def _remove_stale_temporaries(out_dir: Path, sharded: bool) -> None:
    """Delete what killed runs left; with shards, only temporaries untouched for a long time.

    A temporary names only its writer's process id, which says nothing about a writer on
    another machine; a shard leaves alone what was modified in the last ``STALE_SECONDS``.
    """
    if not sharded:
        remove_stale_temporaries(out_dir)
        return
    now = time.time()
    for path in out_dir.rglob(f".*{TEMPORARY_SUFFIX}"):
        pid = path.name.removesuffix(TEMPORARY_SUFFIX).rpartition(".")[2].partition("-")[0]
        if pid.isdigit() and is_running(int(pid)):
            continue
        try:
            if now - path.stat().st_mtime > STALE_SECONDS:
                path.unlink()
        except FileNotFoundError:
            pass


def _write_meta(
    out_dir: Path, config: GeneratorConfig, specs: list[SubjectSpec], complete: bool
) -> None:
    write_json_atomic(
        out_dir / "meta.json",
        {
            "generator_version": GENERATOR_VERSION,
            "arguments": config.arguments(),
            "seed": config.seed,
            "num_frames": config.num_frames,
            "class_counts": {label: sum(s.label == label for s in specs) for label in GM_CLASSES},
            "environment_counts": dict(collections.Counter(s.environment for s in specs)),
            **({"empty_scene_counts": _empty_scene_counts(config)} if config.empty_scenes else {}),
            "complete": complete,
        },
    )


def _empty_scene_counts(config: GeneratorConfig) -> dict[str, int]:
    specs = make_empty_specs(config.empty_scenes, config.seed)
    return {kind: sum(s.kind == kind for s in specs) for kind in EMPTY_SCENE_KINDS}


def generate_subject(spec: SubjectSpec, config: GeneratorConfig, out_dir: Path) -> None:
    """Render one subject: ground truth first, the video last (its presence marks completion)."""
    subject = SyntheticSubject(spec, config.size, config.fps, config.num_frames)
    _write_video_and_truth(subject, spec.subject_id, config, out_dir)


def generate_empty_scene(spec: EmptySceneSpec, config: GeneratorConfig, out_dir: Path) -> None:
    """Render one scene without an infant, in the same format as the infants' videos."""
    scene = EmptyScene(spec, config.size, config.fps, config.num_frames)
    _write_video_and_truth(scene, spec.subject_id, config, out_dir)


def _write_video_and_truth(
    renderer: SyntheticSubject | EmptyScene, name: str, config: GeneratorConfig, out_dir: Path
) -> None:
    masks = np.empty((config.num_frames, config.height, config.width), np.uint8)

    def frames():
        for t in range(config.num_frames):
            image, masks[t] = renderer.render(t)
            yield image

    with atomic_path(video_path(out_dir, name)) as temporary_video:
        writer.encode_video(temporary_video, frames(), config.fps)
        writer.write_npz(gt_path(out_dir, name), **renderer.ground_truth(masks))


def generate_prep_subject(spec: SubjectSpec, config: GeneratorConfig, out_dir: Path) -> None:
    """Render a few evenly spread frames of a preprocessing subject in mmseg/mmpose layouts."""
    subject = SyntheticSubject(spec, config.size, config.fps, config.num_frames)
    frame_indices = np.linspace(0, config.num_frames - 1, config.prep_frames).round().astype(int)
    split = exports.prep_split(spec.index, config.prep_subjects)
    exports.export_subject(subject, sorted(set(frame_indices.tolist())), split, out_dir)


_TASKS = {"subject": generate_subject, "prep": generate_prep_subject, "empty": generate_empty_scene}


def _is_done(kind: str, spec: SubjectSpec | EmptySceneSpec, out_dir: Path) -> bool:
    if kind == "prep":
        return exports.parts_path(out_dir, spec.subject_id).exists()
    return (
        video_path(out_dir, spec.subject_id).exists() and gt_path(out_dir, spec.subject_id).exists()
    )


def _run_task(task: tuple[str, SubjectSpec, GeneratorConfig, Path]) -> tuple[str, str | None]:
    """Worker entry: returns (subject_id, None) or (subject_id, traceback) instead of raising."""
    kind, spec, config, out_dir = task
    try:
        _TASKS[kind](spec, config, out_dir)
        return spec.subject_id, None
    except Exception:
        return spec.subject_id, traceback.format_exc()


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV threads would fight over the cores
    _die_with_parent()


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the generator dies (even by SIGKILL).

    Otherwise a worker of a killed run would go on writing while a rerun starts.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the request counted
        os._exit(1)


def _all_tasks(config: GeneratorConfig, out_dir: Path) -> tuple[list, list, list, list]:
    """(every task, infant specs, preprocessing specs, empty-scene specs) of the dataset."""
    specs = make_specs(config.subjects, config.seed, config.confound, DATASET_GROUP, "s")
    prep_specs = make_specs(config.prep_subjects, config.seed, config.confound, PREP_GROUP, "p")
    empty_specs = make_empty_specs(config.empty_scenes, config.seed)
    tasks = (
        [("subject", s, config, out_dir) for s in specs]
        + [("prep", s, config, out_dir) for s in prep_specs]
        + [("empty", s, config, out_dir) for s in empty_specs]
    )
    return tasks, specs, prep_specs, empty_specs


def generate_dataset(
    out_dir: str | Path,
    config: GeneratorConfig,
    workers: int = 1,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Generate (or resume) a dataset under ``out_dir``; returns the meta.json content.

    Args:
        shard: ``(I, N)``: only the subjects of share I of N (I from 0); the dataset's tables
            are written once every share is done (``complete`` in the returned meta).

    Raises:
        ValueError: bad arguments, or ``out_dir`` holds something made with other arguments.
        RuntimeError: some subjects failed (listed); finished ones stay and a re-run resumes.
    """
    config.validate()
    if workers < 1:
        raise ValueError(f"--workers {workers}: give at least 1")
    out_dir = Path(out_dir)
    _claim_directory(out_dir, config)
    if out_dir.exists():
        _remove_stale_temporaries(out_dir, sharded=shard is not None)  # of a killed run
    tasks, specs, prep_specs, empty_specs = _all_tasks(config, out_dir)
    missing = [task for task in tasks if not _is_done(task[0], task[1], out_dir)]
    if missing or not (out_dir / "meta.json").exists():
        _write_meta(out_dir, config, specs, complete=False)
    todo = select_shard(missing, shard, key=lambda task: task[1].subject_id)
    failures = _run_all(todo, workers, progress)
    if failures:
        details = "\n".join(f"--- {subject_id}\n{error}" for subject_id, error in failures)
        raise RuntimeError(
            f"{len(failures)} subject(s) failed; re-run the same command to retry them:\n{details}"
        )
    if all(_is_done(task[0], task[1], out_dir) for task in missing):
        _write_tables(out_dir, config, specs, prep_specs, empty_specs)
    return json.loads((out_dir / "meta.json").read_text())


def _write_tables(
    out_dir: Path,
    config: GeneratorConfig,
    specs: list[SubjectSpec],
    prep_specs: list[SubjectSpec],
    empty_specs: list[EmptySceneSpec],
) -> None:
    """The files that describe the whole dataset, once every subject is done (tables last: a
    table lists only finished videos)."""
    rows = [(s.subject_id, s.label, s.environment, f"videos/{s.subject_id}.mp4") for s in specs]
    write_csv_atomic(out_dir / SUBJECTS_TABLE, SUBJECT_COLUMNS, rows)
    if empty_specs:
        rows = [
            (s.subject_id, "", s.environment, f"videos/{s.subject_id}.mp4", s.kind)
            for s in empty_specs
        ]
        write_csv_atomic(out_dir / EMPTY_SCENES_TABLE, EMPTY_SCENE_COLUMNS, rows)
    if prep_specs:
        exports.write_coco_annotations(out_dir, [s.subject_id for s in prep_specs])
    _write_meta(out_dir, config, specs, complete=True)


def check_dataset(
    out_dir: str | Path, config: GeneratorConfig, shard: tuple[int, int] | None = None
) -> dict:
    """What a dataset (or a share of it) still lacks; reads only.

    Returns:
        dict: ``total`` (subjects, preprocessing subjects and empty scenes of the share),
        ``missing`` (their ids), ``complete`` (every subject of the whole dataset done and its
        tables written).

    Raises:
        ValueError: bad arguments, or ``out_dir`` holds something made with other arguments.
    """
    config.validate()
    out_dir = Path(out_dir)
    _claim_directory(out_dir, config)
    tasks = _all_tasks(config, out_dir)[0]
    missing = [task[1].subject_id for task in tasks if not _is_done(task[0], task[1], out_dir)]
    meta_file = out_dir / "meta.json"
    complete = bool(
        not missing
        and meta_file.exists()
        and json.loads(meta_file.read_text()).get("complete")
        and (out_dir / SUBJECTS_TABLE).exists()
    )
    share = select_shard([task[1].subject_id for task in tasks], shard)
    absent = set(missing)
    return dict(total=len(share), missing=[i for i in share if i in absent], complete=complete)


def _run_all(tasks: list, workers: int, progress: bool) -> list[tuple[str, str]]:
    failures = []
    bar = tqdm(total=len(tasks), unit="subject", disable=not progress, desc="synthetic infants")
    if workers == 1:
        results = map(_run_task, tasks)
        pool = None
    else:
        # spawn, not fork: forking a process that already runs OpenMP or codec threads can deadlock.
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
        results = pool.imap_unordered(_run_task, tasks)
    try:
        for subject_id, error in results:
            if error is not None:
                failures.append((subject_id, error))
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    return sorted(failures)


__all__ = [
    "EMPTY_SCENES_TABLE",
    "GENERATOR_VERSION",
    "GM_CLASSES",
    "SUBJECTS_TABLE",
    "GeneratorConfig",
    "check_dataset",
    "generate_dataset",
    "generate_empty_scene",
    "generate_subject",
]
