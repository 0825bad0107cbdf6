"""Preprocess every video of a dataset into the cache (tools/data/preprocess_videos.py).

Every subjects.csv row is validated before any work starts. Videos run in worker processes,
one video per worker at a time, each streamed with bounded memory
(:func:`gm_plugins.preprocess.streaming.preprocess_to_cache`). A video that fails, or whose
worker dies (killed, out of memory), is reported and the others go on; a dead worker is
replaced. Finished videos are skipped on the next run, what killed writers left is cleaned
first (:func:`gm_plugins.datasets.cache.recover_cache`). The run ends with a summary that counts
failures and fallbacks per reason, written atomically to ``OUT/preprocess_summary.json``
(``OUT/preprocess_summary.shard-I-of-N.json`` for a share).

Several runs may write one cache at once: on one machine or on many sharing a filesystem, each
with its share of the subjects (``shard=(I, N)``, see :mod:`gm_plugins.utils.sharding`) or all
of them. Before a video is started its claim file ``OUT/.claim~<subject_id>`` is created
atomically, so no two runs process one video; a video claimed by another live run is left to it
(and reported), a claim of a dead or stalled run is taken over. The claim is removed when the
video is finished or has failed. :func:`check_cache` reports, without writing anything, which
videos are still missing.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from gm_plugins.datasets.cache import (
    META_FILE,
    PIPELINE_FILE,
    STAGING_PREFIX,
    claim_cache,
    is_cached,
    read_meta,
    recover_cache,
    write_json_atomic,
)
from gm_plugins.datasets.subjects import read_subjects
from gm_plugins.preprocess.chain import ChainConfig, load_preprocess_pipeline
from gm_plugins.preprocess.quality import FALLBACK_REASONS, fallback_of
from gm_plugins.utils.io import is_running
from gm_plugins.utils.sharding import (
    STALE_SECONDS,
    ClaimBoard,
    ClaimState,
    format_shard,
    host_name,
    select_shard,
)

SUMMARY_FILE = "preprocess_summary.json"
CLAIM_PREFIX = ".claim~"
_chain = None  # this worker process's chain, built once


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
    """Counts of a run over all rows of subjects.csv, or of its share (cached before this run
    included)."""

    total: int = 0
    skipped: int = 0
    outcomes: list[VideoOutcome] = field(default_factory=list)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # claimed by another live run: left to it
    cached: int | None = None  # rows cached when the run ended
    shard: tuple[int, int] | None = None

    @property
    def failures(self) -> list[VideoOutcome]:
        return [outcome for outcome in self.outcomes if outcome.error is not None]

    @property
    def done(self) -> int:
        return sum(outcome.error is None for outcome in self.outcomes)

    def to_dict(self) -> dict:
        """The state of the cache after the run (the same whether or not the run was resumed)."""
        failures = sorted(self.failures, key=lambda outcome: outcome.subject_id)
        cached = self.cached if self.cached is not None else self.total - len(failures)
        return dict(
            total=self.total,
            cached=cached,
            failed=len(failures),
            failures={o.subject_id: o.error.splitlines()[0] for o in failures},
            fallbacks={reason: len(ids) for reason, ids in sorted(self.fallbacks.items())},
            fallback_subjects={reason: ids for reason, ids in sorted(self.fallbacks.items())},
            claimed_elsewhere=sorted(self.busy),
            shard=format_shard(self.shard) if self.shard is not None else None,
        )


def summary_path(out: str | os.PathLike, shard: tuple[int, int] | None = None) -> Path:
    """``OUT/preprocess_summary.json``, or ``OUT/preprocess_summary.shard-I-of-N.json``."""
    if shard is None:
        return Path(out) / SUMMARY_FILE
    return Path(out) / f"{Path(SUMMARY_FILE).stem}.shard-{shard[0]}-of-{shard[1]}.json"


def _init_worker(chain: ChainConfig, torch_threads: int) -> None:
    import importlib

    import cv2
    import torch

    import gm_plugins.preprocess  # noqa: F401  (registers the transforms in a spawned process)
    from gm_plugins.preprocess.streaming import build_preprocess_pipeline

    global _chain
    for module in chain.imports:
        importlib.import_module(module)
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(torch_threads)  # the cores left to this worker (flow pairs, resizes)
    _chain = build_preprocess_pipeline(chain.steps)


def _preprocess_row(task: tuple[dict, str, str, bool]) -> VideoOutcome:
    """Preprocess one row into the cache; never raises an Exception (reports it)."""
    from gm_plugins.datasets.subjects import resolve_video
    from gm_plugins.preprocess.streaming import preprocess_to_cache

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
    tasks: list[tuple],
    pipeline: ChainConfig,
    workers: int,
    report: Callable[[VideoOutcome], None],
    take: Callable[[tuple], bool] | None = None,
) -> list[VideoOutcome]:
    """Run tasks in ``workers`` spawned processes; ``report(outcome)`` is called per task.

    ``take(task)``, when given, is asked just before a task goes to a worker; a task it
    declines (False) is dropped.
    """
    context = multiprocessing.get_context("spawn")  # forking a process with OpenMP can deadlock
    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = deque(tasks)
    pool = [_Worker(context, pipeline, threads) for _ in range(min(workers, len(tasks)))]
    outcomes = []
    try:
        while pending or any(worker.task is not None for worker in pool):
            for worker in pool:
                while worker.task is None and pending:
                    task = pending.popleft()
                    if take is None or take(task):
                        worker.give(task)
            busy = [worker for worker in pool if worker.task is not None]
            if not busy:
                continue
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
    shard: tuple[int, int] | None = None,
    stale_seconds: float = STALE_SECONDS,
) -> PreprocessSummary:
    """Preprocess every video of ``DATA/subjects.csv`` (or of its share) not cached yet into
    ``out``.

    Args:
        config: file holding ``preprocess_pipeline``.
        data_root: folder with subjects.csv; videos are relative to it.
        table: another subjects table to read instead of ``DATA/subjects.csv``.
        out: the cache folder.
        workers: worker processes (0: in this process, without protection against a crash).
        require_labels: every row needs a class label (False for unlabelled videos).
        allow_absolute: accept absolute video paths in subjects.csv.
        shard: ``(I, N)``: only the subjects of share I of N (I from 0), see
            :mod:`gm_plugins.utils.sharding`; None: all of them.
        stale_seconds: a claim of another run not refreshed for this long is taken over.

    Raises:
        ValueError: bad arguments, config or subjects.csv (every bad row listed), or a cache
            written by another chain. Nothing is written before these checks pass.
    """
    from tqdm import tqdm

    if workers < 0:
        raise ValueError(f"--workers {workers}: give 0 (in process) or more")
    data_root, out = Path(data_root), Path(out)
    chain = load_preprocess_pipeline(config)
    rows = _read_rows(data_root, table, require_labels, allow_absolute)
    rows = select_shard(rows, shard, key=lambda row: row["subject_id"])
    board = ClaimBoard(out, CLAIM_PREFIX, stale_seconds=stale_seconds)
    summary = PreprocessSummary(total=len(rows), recovered=recover_cache(out), shard=shard)
    claim_cache(out, chain.steps)
    summary.recovered += board.clear_stale()
    todo = [row for row in rows if not is_cached(out, row["subject_id"])]
    summary.skipped = len(rows) - len(todo)
    tasks = [(row, str(data_root), str(out), allow_absolute) for row in todo]
    bar = tqdm(total=len(tasks), unit="video", disable=not progress, desc="preprocess")

    def take(task: tuple) -> bool:
        """Claim the video; False (and counted) when another run has it or has finished it."""
        subject_id = task[0]["subject_id"]
        if not board.acquire(subject_id):
            summary.busy.append(subject_id)
        elif is_cached(out, subject_id):  # finished by another run since the list was made
            board.release(subject_id)
            summary.skipped += 1
        else:
            return True
        bar.update()
        return False

    def report(outcome: VideoOutcome) -> None:
        board.release(outcome.subject_id)
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
                if take(task):
                    outcome = _preprocess_row(task)
                    summary.outcomes.append(outcome)
                    report(outcome)
        else:
            summary.outcomes = run_in_workers(tasks, chain, workers, report, take)
    finally:
        board.release_all()
        bar.close()
    fallbacks: dict[str, list[str]] = {}
    summary.cached = 0
    for row in rows:
        if is_cached(out, row["subject_id"]):
            summary.cached += 1
            reason = fallback_of(read_meta(out, row["subject_id"]))
            if reason is not None:
                fallbacks.setdefault(reason, []).append(row["subject_id"])
    summary.fallbacks = fallbacks
    write_json_atomic(summary_path(out, shard), summary.to_dict())
    return summary


def _read_rows(
    data_root: Path, table: str | os.PathLike | None, require_labels: bool, allow_absolute: bool
) -> list[dict]:
    return read_subjects(
        Path(table) if table is not None else data_root / "subjects.csv",
        data_root,
        require_label=require_labels,
        allow_absolute=allow_absolute,
    )


@dataclass
class SubjectStatus:
    """Where one subject stands in a cache (see :func:`check_cache`).

    ``status`` is ``'cached'``, ``'claimed'`` (a run holds its claim: live or stale),
    ``'unfinished'`` (a half-written entry or staging folder, no claim) or ``'missing'``.
    """

    subject_id: str
    status: str
    detail: str = ""
    claim: ClaimState | None = None


@dataclass
class CacheCheck:
    """The result of :func:`check_cache`: one status per subject of subjects.csv (or share)."""

    out: Path
    subjects: list[SubjectStatus]
    shard: tuple[int, int] | None = None

    def count(self, status: str) -> int:
        return sum(subject.status == status for subject in self.subjects)

    @property
    def complete(self) -> bool:
        return all(subject.status == "cached" for subject in self.subjects)


def check_cache(
    config: str | os.PathLike,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    require_labels: bool = True,
    allow_absolute: bool = False,
    table: str | os.PathLike | None = None,
    shard: tuple[int, int] | None = None,
    stale_seconds: float = STALE_SECONDS,
) -> CacheCheck:
    """Which videos of subjects.csv (or of a share) are cached, claimed, unfinished or missing.

    Reads only: safe while runs are writing the cache. subjects.csv and the config are checked
    as :func:`preprocess_dataset` checks them, and a cache written by another chain is refused.
    A missing video's last recorded failure (from the runs' summaries) is quoted.

    Raises:
        ValueError: bad config or subjects.csv, or a cache written by another chain.
    """
    data_root, out = Path(data_root), Path(out)
    chain = load_preprocess_pipeline(config)
    rows = _read_rows(data_root, table, require_labels, allow_absolute)
    rows = select_shard(rows, shard, key=lambda row: row["subject_id"])
    if (out / PIPELINE_FILE).is_file():
        claim_cache(out, chain.steps)  # with a record present, only compares (writes nothing)
    board = ClaimBoard(out, CLAIM_PREFIX, stale_seconds=stale_seconds)
    failures = _recorded_failures(out)
    staging = _staging_folders(out)
    subjects = []
    for row in rows:
        subject_id = row["subject_id"]
        if is_cached(out, subject_id):
            subjects.append(SubjectStatus(subject_id, "cached"))
            continue
        notes = list(staging.get(subject_id, []))
        if (out / subject_id).is_dir() and not (out / subject_id / META_FILE).exists():
            notes.append(f"{out / subject_id} has no {META_FILE}")
        claim = board.inspect(subject_id)
        if claim is not None:
            status = "claimed"
            notes.insert(0, claim.describe())
        else:
            status = "unfinished" if notes else "missing"
        if subject_id in failures:
            notes.append(f"last failure ({failures[subject_id][0]}): {failures[subject_id][1]}")
        subjects.append(SubjectStatus(subject_id, status, "; ".join(notes), claim))
    return CacheCheck(out, subjects, shard)


def _recorded_failures(out: Path) -> dict[str, tuple[str, str]]:
    """subject_id -> (summary file name, first error line) from the runs' summaries."""
    failures: dict[str, tuple[str, str]] = {}
    if not out.is_dir():
        return failures
    summaries = sorted(
        out.glob(f"{Path(SUMMARY_FILE).stem}*.json"), key=lambda p: p.stat().st_mtime
    )
    for path in summaries:  # the latest summary wins
        try:
            recorded = json.loads(path.read_text()).get("failures", {})
        except (OSError, ValueError, AttributeError):
            continue
        for subject_id, error in recorded.items():
            failures[subject_id] = (path.name, error)
    return failures


def _staging_folders(out: Path) -> dict[str, list[str]]:
    """subject_id -> descriptions of its staging folders (entries being written or abandoned)."""
    found: dict[str, list[str]] = {}
    if not out.is_dir():
        return found
    for folder in out.glob(f"{STAGING_PREFIX}*"):
        try:
            subject_id, host, pid, _ = folder.name[len(STAGING_PREFIX) :].rsplit("~", 3)
            pid_number = int(pid)
        except ValueError:
            continue
        if host != host_name().replace("~", "-"):
            state = f"being written on host {host}, or left there by a killed run"
        elif is_running(pid_number):
            state = f"being written by pid {pid_number}"
        else:
            state = f"left by the killed pid {pid_number} (the next run removes it)"
        found.setdefault(subject_id, []).append(f"staging folder {folder.name}: {state}")
    return found


def format_check(check: CacheCheck) -> str:
    """One line per subject not cached, then a one-line summary."""
    lines = []
    for subject in check.subjects:
        if subject.status != "cached":
            detail = f"  ({subject.detail})" if subject.detail else ""
            lines.append(f"{subject.status:<10} {subject.subject_id}{detail}")
    claims = [s.claim for s in check.subjects if s.status == "claimed" and s.claim is not None]
    stale = sum(claim.stale for claim in claims)
    where = f" in shard {format_shard(check.shard)}" if check.shard is not None else ""
    lines.append(
        f"check: {check.count('cached')} of {len(check.subjects)} video(s){where} cached, "
        f"{check.count('missing')} missing, {check.count('claimed')} claimed "
        f"({len(claims) - stale} live, {stale} stale), {check.count('unfinished')} unfinished "
        f"-> {check.out}"
    )
    return "\n".join(lines)


def format_summary(summary: PreprocessSummary, out: str | os.PathLike) -> str:
    """The lines a user reads at the end of a run."""
    seconds = [o.seconds for o in summary.outcomes if o.error is None]
    mean = f" ({sum(seconds) / len(seconds):.1f} s each)" if seconds else ""
    where = f" in shard {format_shard(summary.shard)}" if summary.shard is not None else ""
    lines = [
        f"{summary.done} video(s) preprocessed{mean}, {summary.skipped} already cached, "
        f"{len(summary.failures)} failed, of {summary.total}{where} -> {out}"
    ]
    lines += [f"recovered: {line}" for line in summary.recovered]
    if summary.busy:
        shown = ", ".join(sorted(summary.busy)[:8]) + (" ..." if len(summary.busy) > 8 else "")
        lines.append(
            f"{len(summary.busy)} video(s) left to other runs that hold their claims: {shown} "
            "(add --check to this command to see where the cache stands)"
        )
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
    lines.append(f"summary: {summary_path(out, summary.shard)}")
    return "\n".join(lines)


def run_preprocessing(
    config: str | os.PathLike,
    data_root: str | os.PathLike,
    out: str | os.PathLike,
    check: bool = False,
    **options,
) -> int:
    """What tools/data/preprocess_videos.py does: :func:`preprocess_dataset`, then the summary.

    ``options`` are :func:`preprocess_dataset`'s keyword arguments. Bad arguments, config or
    subjects.csv are printed as one error; each failed video is printed with its error,
    followed by how to retry. With ``check``, nothing is processed: :func:`check_cache`'s
    report is printed instead (``workers`` and ``progress`` are then ignored).

    Returns:
        int: the exit code: 0 all done, 1 some videos failed (with ``check``: some are not
        cached), 2 bad input (nothing written).
    """
    import sys

    if check:
        options.pop("workers", None)
        options.pop("progress", None)
        try:
            report = check_cache(config, data_root, out, **options)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(format_check(report))
        return 0 if report.complete else 1
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
