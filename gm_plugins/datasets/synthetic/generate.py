"""Generate a whole synthetic dataset: subjects in parallel, resumable, atomic per file.

Layout under the output directory::

    videos/<subject_id>.mp4      H.264 RGB video
    gt/<subject_id>.npz          keypoints (T, 17, 3) float32, masks (T, H, W) uint8, fps, params
    subjects.csv                 subject_id,label,environment,video
    mmseg/{img_dir,ann_dir}/{train,val}/*.png          frames of extra subjects p0000...
    mmpose/images/{train,val}/*.png, mmpose/annotations/{train,val}.json
    meta.json                    generator version, arguments, class counts, completion
"""

from __future__ import annotations

import collections
import dataclasses
import json
import multiprocessing
import traceback
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from . import exports, writer
from .motion import GM_CLASSES
from .subject import SubjectSpec, SyntheticSubject, make_specs

GENERATOR_VERSION = "1.0"
DATASET_GROUP, PREP_GROUP = 0, 1


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
    """Refuse a directory holding something else; resume one made with the same arguments."""
    meta_file = out_dir / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        previous = {**meta.get("arguments", {}), "generator_version": meta.get("generator_version")}
        wanted = {**config.arguments(), "generator_version": GENERATOR_VERSION}
        changed = {k: (previous.get(k), v) for k, v in wanted.items() if previous.get(k) != v}
        if changed:
            listing = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{out_dir} holds a synthetic dataset made with other arguments ({listing}); "
                "rerun with "
                "its original arguments to resume it, or choose another --out (or delete it)"
            )
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(
            f"{out_dir} exists, is not empty and has no meta.json: choose another --out or empty it"
        )


def _write_meta(
    out_dir: Path, config: GeneratorConfig, specs: list[SubjectSpec], complete: bool
) -> None:
    writer.write_json(
        out_dir / "meta.json",
        {
            "generator_version": GENERATOR_VERSION,
            "arguments": config.arguments(),
            "seed": config.seed,
            "num_frames": config.num_frames,
            "class_counts": {label: sum(s.label == label for s in specs) for label in GM_CLASSES},
            "environment_counts": dict(collections.Counter(s.environment for s in specs)),
            "complete": complete,
        },
    )


def generate_subject(spec: SubjectSpec, config: GeneratorConfig, out_dir: Path) -> None:
    """Render one subject: ground truth first, the video last (its presence marks completion)."""
    subject = SyntheticSubject(spec, config.size, config.fps, config.num_frames)
    masks = np.empty((config.num_frames, config.height, config.width), np.uint8)

    def frames():
        for t in range(config.num_frames):
            image, masks[t] = subject.render(t)
            yield image

    with writer.atomic_path(video_path(out_dir, spec.subject_id)) as temporary_video:
        writer.encode_video(temporary_video, frames(), config.fps)
        writer.write_npz(gt_path(out_dir, spec.subject_id), **subject.ground_truth(masks))


def generate_prep_subject(spec: SubjectSpec, config: GeneratorConfig, out_dir: Path) -> None:
    """Render a few evenly spread frames of a preprocessing subject in mmseg/mmpose layouts."""
    subject = SyntheticSubject(spec, config.size, config.fps, config.num_frames)
    frame_indices = np.linspace(0, config.num_frames - 1, config.prep_frames).round().astype(int)
    split = exports.prep_split(spec.index, config.prep_subjects)
    exports.export_subject(subject, sorted(set(frame_indices.tolist())), split, out_dir)


def _is_done(kind: str, spec: SubjectSpec, out_dir: Path) -> bool:
    if kind == "prep":
        return exports.parts_path(out_dir, spec.subject_id).exists()
    return (
        video_path(out_dir, spec.subject_id).exists() and gt_path(out_dir, spec.subject_id).exists()
    )


def _run_task(task: tuple[str, SubjectSpec, GeneratorConfig, Path]) -> tuple[str, str | None]:
    """Worker entry: returns (subject_id, None) or (subject_id, traceback) instead of raising."""
    kind, spec, config, out_dir = task
    try:
        run = generate_prep_subject if kind == "prep" else generate_subject
        run(spec, config, out_dir)
        return spec.subject_id, None
    except Exception:
        return spec.subject_id, traceback.format_exc()


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV threads would fight over the cores


def generate_dataset(
    out_dir: str | Path, config: GeneratorConfig, workers: int = 1, progress: bool = True
) -> dict:
    """Generate (or resume) a dataset under ``out_dir``; returns the meta.json content.

    Raises:
        ValueError: bad arguments, or ``out_dir`` holds something made with other arguments.
        RuntimeError: some subjects failed (listed); finished ones stay and a re-run resumes.
    """
    config.validate()
    if workers < 1:
        raise ValueError(f"--workers {workers}: give at least 1")
    out_dir = Path(out_dir)
    _claim_directory(out_dir, config)
    specs = make_specs(config.subjects, config.seed, config.confound, DATASET_GROUP, "s")
    prep_specs = make_specs(config.prep_subjects, config.seed, config.confound, PREP_GROUP, "p")
    _write_meta(out_dir, config, specs, complete=False)
    tasks = [("subject", s, config, out_dir) for s in specs] + [
        ("prep", s, config, out_dir) for s in prep_specs
    ]
    todo = [task for task in tasks if not _is_done(task[0], task[1], out_dir)]
    failures = _run_all(todo, workers, progress)
    if failures:
        details = "\n".join(f"--- {subject_id}\n{error}" for subject_id, error in failures)
        raise RuntimeError(
            f"{len(failures)} subject(s) failed; re-run the same command to retry them:\n{details}"
        )
    rows = [(s.subject_id, s.label, s.environment, f"videos/{s.subject_id}.mp4") for s in specs]
    writer.write_csv(
        out_dir / "subjects.csv", ["subject_id", "label", "environment", "video"], rows
    )
    if prep_specs:
        exports.write_coco_annotations(out_dir, [s.subject_id for s in prep_specs])
    _write_meta(out_dir, config, specs, complete=True)
    return json.loads((out_dir / "meta.json").read_text())


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


__all__ = ["GENERATOR_VERSION", "GM_CLASSES", "GeneratorConfig", "generate_dataset"]
