"""Preprocess every video of a dataset into the cache: the job behind tools/preprocess_videos.py.

Every subjects.csv row is validated before any work starts. Videos run in worker processes,
one video per worker at a time, each streamed with bounded memory
(:func:`gm_plugins.datasets.preprocessing.preprocess_to_cache`). A video that fails, or whose
worker dies (killed, out of memory), is reported and the others go on; a dead worker is
replaced. Finished videos are skipped on the next run, what killed writers left is cleaned
first (:func:`gm_plugins.datasets.cache.recover_cache`). The run ends with a summary that counts
failures and fallbacks per reason, written atomically to ``OUT/preprocess_summary.json``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from gm_plugins.datasets.cache import (
    claim_cache,
    is_cached,
    read_meta,
    recover_cache,
    write_json_atomic,
)
from gm_plugins.datasets.quality import FALLBACK_REASONS, fallback_of
from gm_plugins.datasets.subjects import read_subjects
from gm_plugins.utils.config import PREPROCESS_SCOPES, ConfigError, load_config

SUMMARY_FILE = "preprocess_summary.json"
_chain = None  # this worker process's chain, built once


@dataclass(frozen=True)
class ChainConfig:
    """A config's ``preprocess_pipeline`` steps and the modules its ``custom_imports`` names."""

    path: str
    steps: list[dict]
    imports: tuple[str, ...] = ()


def load_preprocess_pipeline(config_path: str | os.PathLike) -> ChainConfig:
    """``preprocess_pipeline`` of an mmengine config as plain dicts, checked by building it.

    The config's ``custom_imports`` are imported here (by mmengine) and again in every
    worker process, so a chain may use transforms of the user's own modules.

    Raises:
        ConfigError: (a ValueError) the file is missing, is not an mmaction-scope config, has
            no preprocess_pipeline, or the chain cannot be built (unknown transform, bad
            argument, missing model file); the message names it.
    """
    from gm_plugins.datasets.preprocessing import build_preprocess_pipeline

    try:
        cfg = load_config(config_path, scopes=PREPROCESS_SCOPES, required=("preprocess_pipeline",))
    except FileNotFoundError as error:
        raise ConfigError(str(error)) from None
    steps = [
        step.to_dict() if hasattr(step, "to_dict") else dict(step)
        for step in cfg.preprocess_pipeline
    ]
    try:
        build_preprocess_pipeline(steps)  # cheap (models load lazily): fails before any work
    except Exception as error:
        raise ConfigError(f"{config_path}: cannot build preprocess_pipeline: {error}") from error
    imports = tuple((cfg.get("custom_imports") or {}).get("imports", ()))
    return ChainConfig(os.fspath(config_path), steps, imports)


@dataclass
class VideoOutcome:
    """What became of one video."""

    subject_id: str
    error: str | None = None
    seconds: float = 0.0
    fallback: str | None = None
    fallback_detail: str | None = None


@dataclass
class PreprocessSummary:
    """Counts of a run over all rows of subjects.csv (cached before this run included)."""

    total: int = 0
    skipped: int = 0
    outcomes: list[VideoOutcome] = field(default_factory=list)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[VideoOutcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    @property
    def done(self) -> int:
        return sum(outcome.error is None for outcome in self.outcomes)

    def to_dict(self) -> dict:
        """The state of the cache after the run (the same whether or not the run was resumed)."""
        failures = sorted(self.failures, key=lambda outcome: outcome.subject_id)
        return dict(
            total=self.total,
            cached=self.total - len(failures),
            failed=len(failures),
            failures={o.subject_id: o.error.splitlines()[0] for o in failures},
            fallbacks={reason: len(ids) for reason, ids in sorted(self.fallbacks.items())},
            fallback_subjects={reason: ids for reason, ids in sorted(self.fallbacks.items())},
        )


def _init_worker(chain: ChainConfig, torch_threads: int) -> None:
    import importlib

    import cv2
    import torch

    import gm_plugins  # noqa: F401  (registers the transforms in a spawned process)
    from gm_plugins.datasets.preprocessing import build_preprocess_pipeline

    global _chain
    for module in chain.imports:
        importlib.import_module(module)
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(1)  # processes already share the cores
    _chain = build_preprocess_pipeline(chain.steps)


def _preprocess_row(task: tuple[dict, str, str, bool]) -> VideoOutcome:
    """Preprocess one row into the cache; never raises an Exception (reports it)."""
    from gm_plugins.datasets.preprocessing import preprocess_to_cache
    from gm_plugins.datasets.subjects import resolve_video

    row, data_root, out, allow_absolute = task
    start = time.perf_counter()
    try:
        video = resolve_video(data_root, row["video"], allow_absolute)
        extra = dict(label=row.get("label", ""), environment=row.get("environment", ""))
        meta = preprocess_to_cache(
            _chain, video, out, row["subject_id"], extra, video_name=row["video"]
        )
        quality = meta.get("quality") or {}
        return VideoOutcome(
            row["subject_id"],
            seconds=time.perf_counter() - start,
            fallback=quality.get("fallback"),
            fallback_detail=quality.get("fallback_detail"),
        )
    except Exception as error:
        detail = traceback.format_exc(limit=-3)
        return VideoOutcome(row["subject_id"], error=f"{type(error).__name__}: {error}\n{detail}")


def _worker_main(connection: Connection, pipeline: ChainConfig, torch_threads: int) -> None:
    _init_worker(pipeline, torch_threads)
    while True:
        task = connection.recv()
        if task is None:
            return
        connection.send(_preprocess_row(task))


class _Worker:
    """One worker process and the task it holds."""

    def __init__(self, context, pipeline: ChainConfig, threads: int) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, pipeline, threads), daemon=True
        )
        self.process.start()
        child.close()
        self.task: tuple | None = None

    def give(self, task: tuple) -> None:
        self.task = task
        self.connection.send(task)

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.connection.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        import signal

        name = signal.Signals(-exitcode).name
        hint = " (killed: out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"WorkerDied: the worker process was stopped by {name}{hint}"
    return f"WorkerDied: the worker process exited with code {exitcode}"


def run_in_workers(
    tasks: list[tuple], pipeline: ChainConfig, workers: int, report
) -> list[VideoOutcome]:
    """Run tasks in ``workers`` spawned processes; ``report(outcome)`` is called per task."""
    context = multiprocessing.get_context("spawn")  # forking a process with OpenMP can deadlock
    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = deque(tasks)
    pool = [_Worker(context, pipeline, threads) for _ in range(min(workers, len(tasks)))]
    outcomes = []
    try:
        while pending or any(worker.task is not None for worker in pool):
            for worker in pool:
                if worker.task is None and pending:
                    worker.give(pending.popleft())
            busy = [worker for worker in pool if worker.task is not None]
            wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
            for index, worker in enumerate(pool):
                if worker.task is None:
                    continue
                outcome = None
                if worker.connection.poll():
                    try:
                        outcome = worker.connection.recv()
                    except (EOFError, OSError):
                        outcome = None
                if outcome is None and worker.process.is_alive():
                    continue
                if outcome is None:  # died while holding the task
                    worker.process.join()
                    subject_id = worker.task[0]["subject_id"]
                    outcome = VideoOutcome(
                        subject_id, error=_death_message(worker.process.exitcode)
                    )
                    pool[index] = _Worker(context, pipeline, threads) if pending else worker
                    worker.task = None
                else:
                    worker.task = None
                outcomes.append(outcome)
                report(outcome)
    finally:
        for worker in pool:
            if worker.process.is_alive():
                worker.stop()
    return outcomes


def preprocess_dataset(
    config: str | os.PathLike,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    workers: int = 1,
    progress: bool = True,
    require_labels: bool = True,
    allow_absolute: bool = False,
    table: str | os.PathLike | None = None,
) -> PreprocessSummary:
    """Preprocess every video of ``DATA/subjects.csv`` not cached yet into ``out``.

    Args:
        config: file holding ``preprocess_pipeline``.
        data_root: folder with subjects.csv; videos are relative to it.
        table: another subjects table to read instead of ``DATA/subjects.csv``.
        out: the cache folder.
        workers: worker processes (0: in this process, without protection against a crash).
        require_labels: every row needs a class label (False for unlabelled videos).
        allow_absolute: accept absolute video paths in subjects.csv.

    Raises:
        ValueError: bad arguments, config or subjects.csv (every bad row listed), or a cache
            written by another chain. Nothing is written before these checks pass.
    """
    from tqdm import tqdm

    if workers < 0:
        raise ValueError(f"--workers {workers}: give 0 (in process) or more")
    data_root, out = Path(data_root), Path(out)
    chain = load_preprocess_pipeline(config)
    rows = read_subjects(
        Path(table) if table is not None else data_root / "subjects.csv",
        data_root,
        require_label=require_labels,
        allow_absolute=allow_absolute,
    )
    summary = PreprocessSummary(total=len(rows), recovered=recover_cache(out))
    claim_cache(out, chain.steps)
    todo = [row for row in rows if not is_cached(out, row["subject_id"])]
    summary.skipped = len(rows) - len(todo)
    tasks = [(row, str(data_root), str(out), allow_absolute) for row in todo]
    bar = tqdm(total=len(tasks), unit="video", disable=not progress, desc="preprocess")

    def report(outcome: VideoOutcome) -> None:
        if outcome.error is not None:
            bar.write(f"FAILED {outcome.subject_id}: {outcome.error.splitlines()[0]}")
        elif outcome.fallback is not None:
            bar.write(
                f"fallback {outcome.subject_id}: {outcome.fallback} ({outcome.fallback_detail})"
            )
        bar.update()

    try:
        if workers == 0:
            _init_worker(chain, max(1, os.cpu_count() or 1))
            for task in tasks:
                outcome = _preprocess_row(task)
                summary.outcomes.append(outcome)
                report(outcome)
        else:
            summary.outcomes = run_in_workers(tasks, chain, workers, report)
    finally:
        bar.close()
    fallbacks: dict[str, list[str]] = {}
    for row in rows:
        if is_cached(out, row["subject_id"]):
            reason = fallback_of(read_meta(out, row["subject_id"]))
            if reason is not None:
                fallbacks.setdefault(reason, []).append(row["subject_id"])
    summary.fallbacks = fallbacks
    write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
    return summary


def format_summary(summary: PreprocessSummary, out: str | os.PathLike) -> str:
    """The lines a user reads at the end of a run."""
    seconds = [o.seconds for o in summary.outcomes if o.error is None]
    mean = f" ({sum(seconds) / len(seconds):.1f} s each)" if seconds else ""
    lines = [
        f"{summary.done} video(s) preprocessed{mean}, {summary.skipped} already cached, "
        f"{len(summary.failures)} failed, of {summary.total} -> {out}"
    ]
    lines += [f"recovered: {line}" for line in summary.recovered]
    for reason, ids in sorted(summary.fallbacks.items()):
        shown = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "")
        lines.append(
            f"{len(ids)} fallback(s) '{reason}' ({FALLBACK_REASONS.get(reason, reason)}): {shown}"
        )
    if summary.fallbacks:
        lines.append(
            "Fallback videos stay in the cache; GMDataset leaves them out unless "
            "exclude_fallbacks=False."
        )
    kinds = Counter(o.error.split(":")[0] for o in summary.failures)
    if kinds:
        lines.append("failures by kind: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    lines.append(f"summary: {Path(out) / SUMMARY_FILE}")
    return "\n".join(lines)


def run_preprocessing(
    config: str | os.PathLike, data_root: str | os.PathLike, out: str | os.PathLike, **options
) -> int:
    """What tools/preprocess_videos.py does: :func:`preprocess_dataset`, then the summary.

    ``options`` are :func:`preprocess_dataset`'s keyword arguments. Bad arguments, config or
    subjects.csv are printed as one error; each failed video is printed with its error,
    followed by how to retry.

    Returns:
        int: the exit code: 0 all done, 1 some videos failed, 2 bad input (nothing written).
    """
    import sys

    try:
        summary = preprocess_dataset(config, data_root, out, **options)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_summary(summary, out))
    for outcome in summary.failures:
        print(f"--- {outcome.subject_id} failed:\n{outcome.error.rstrip()}", file=sys.stderr)
    if summary.failures:
        print(
            "Fix or remove the failed videos and run the same command again to retry them.",
            file=sys.stderr,
        )
    return 1 if summary.failures else 0
