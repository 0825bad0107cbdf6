"""Running a cross-validation: every (config, repeat, fold) trained and tested in a child process.

tools/cross_validate.py parses its arguments and calls :func:`cross_validate`. Each fold gets
its own config file (the config with the fold's overrides, written with ``Config.dump``) and
runs ``python -m gm_plugins.engine.train --test-after`` (what tools/train.py runs) in its own
process, logging to the fold's ``run.log``; it
ends by writing ``result.json``. A rerun skips finished folds and resumes an interrupted one
from its last checkpoint, so a killed run reports exactly what an uninterrupted run reports.
The fold bookkeeping and the report live in :mod:`gm_plugins.evaluation.cross_validation`.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mmengine.config import Config

from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.experiments.results_store import machine_environment
from gm_plugins.utils.config import load_config
from gm_plugins.utils.io import write_json_atomic, write_text_atomic
from gm_plugins.utils.locking import WorkDirInUseError, lock_work_dir
from gm_plugins.utils.processes import (
    module_command,
    run_command,
    stop_children_on_signals,
    stopping,
    threads_env,
)

#: What ``--keep-checkpoints`` accepts: checkpoints kept after a fold is tested.
KEEP_CHOICES = ("all", "tested", "none")
#: The training entry point every fold runs (``python -m``): tools/train.py runs the same.
TRAIN_MODULE = "gm_plugins.engine.train"


@dataclass
class CrossValidation:
    """One cross-validation: its configs, splits and how to run the folds.

    Attributes:
        configs: classifier configs to compare (reported by file name).
        work_dir: folds, per-fold runs and the report.
        cfg_options: overrides applied to every config.
        jobs: folds trained at once; each gets cores / jobs torch threads unless
            ``OMP_NUM_THREADS`` is set.
        launcher: ``'none'`` or ``'pytorch'`` (each fold on ``gpus`` processes: one per GPU,
            or CPU processes over gloo on a machine without CUDA).
        keep_checkpoints: one of :data:`KEEP_CHOICES`.
    """

    configs: list[str]
    work_dir: Path
    folds: int = 5
    seed: int = 0
    repeats: int = 1
    jobs: int = 1
    launcher: str = "none"
    gpus: int = 1
    keep_checkpoints: str = "tested"
    cfg_options: Mapping = field(default_factory=dict)
    train_module: str = TRAIN_MODULE

    def fold_seed(self, run: cv.FoldRun) -> int:
        return self.seed + run.repeat


def gpus_missing(count: int) -> bool:
    """Whether CUDA is in use but fewer than ``count`` devices are visible.

    Without CUDA, distributed folds run ``count`` CPU processes over gloo instead.
    """
    import torch

    return torch.cuda.is_available() and torch.cuda.device_count() < count


def free_port() -> int:
    """A TCP port nobody listens on now, for one fold's rendezvous."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_fold_arguments(parser) -> None:
    """The options of a shared-fold cross-validation (tools/cross_validate.py and
    tools/analysis_tools/benchmark_backbones.py): --folds, --seed, --repeats, --jobs,
    --keep-checkpoints,
    --cfg-options."""
    from mmengine.config import DictAction

    add = parser.add_argument
    add("--folds", type=int, default=5, help="k of the k-fold split (default: %(default)s)")
    add(
        "--seed",
        type=int,
        default=0,
        help="fold and training seed of repeat 0; repeat r uses seed + r (default: %(default)s)",
    )
    add("--repeats", type=int, default=1, help="repeat the k folds with new splits (default: 1)")
    add(
        "--jobs",
        type=int,
        default=1,
        help="folds trained at once; each gets cores / jobs torch threads unless "
        "OMP_NUM_THREADS is set (default: %(default)s)",
    )
    add(
        "--keep-checkpoints",
        choices=KEEP_CHOICES,
        default="tested",
        help="checkpoints kept after a fold is tested (default: %(default)s)",
    )
    add(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default={},
        help="overrides applied to every config, e.g. train_cfg.max_epochs=4",
    )


def prune_checkpoints(directory: Path, tested: Path, keep: str) -> None:
    """Delete a tested fold's checkpoints: all but the tested one (``'tested'``) or all."""
    if keep == "all":
        return
    for checkpoint in directory.glob("*.pth"):
        if keep == "none" or checkpoint.resolve() != tested.resolve():
            checkpoint.unlink()


def load_configs(job: CrossValidation) -> dict[str, Config]:
    """Every config, loaded once with the job's overrides (scope checked)."""
    return {config: load_config(config, job.cfg_options) for config in job.configs}


def make_folds(job: CrossValidation, configs: Mapping[str, Config]) -> dict[int, Path]:
    """Fold files per repeat from the first config's subjects; every config must share them."""
    tables = {config: cv.subject_table(cfg) for config, cfg in configs.items()}
    first_table, ids, labels = tables[job.configs[0]]
    for config, (table, other_ids, _) in tables.items():
        if sorted(other_ids) != sorted(ids):
            raise ValueError(
                f"{config} trains on {table}, whose infants differ from {first_table} of "
                f"{job.configs[0]}: cross-validate configs of one dataset together"
            )
    return {
        repeat: cv.prepare_folds(job.work_dir, ids, labels, job.folds, job.seed, repeat)
        for repeat in range(job.repeats)
    }


class FoldRunner:
    """Trains and tests one fold in a child process, logging to the fold's work dir."""

    def __init__(
        self, job: CrossValidation, configs: Mapping[str, Config], folds_files: dict[int, Path]
    ) -> None:
        self.job = job
        self.configs = configs
        self.folds_files = folds_files
        import torch

        # Distributed folds on CPUs run ``gpus`` processes each: they share the cores too.
        cpu_ranks = job.gpus if job.launcher == "pytorch" and not torch.cuda.is_available() else 1
        self.threads = max(1, (os.cpu_count() or 1) // max(1, job.jobs * cpu_ranks))
        # The caller's OMP_NUM_THREADS wins (``threads_env(override=False)``), so it is also
        # what a fold record must report.
        caller = os.environ.get("OMP_NUM_THREADS", "")
        if caller.isdigit() and int(caller) > 0:
            self.threads = int(caller)
        self.lock = threading.Lock()

    def train_command(self) -> list[str]:
        if self.job.launcher == "pytorch":
            return [
                sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={self.job.gpus}",
                f"--master_port={free_port()}", "-m", self.job.train_module,
            ]  # fmt: skip
        return module_command(self.job.train_module)

    def write_fold_config(self, run: cv.FoldRun) -> Path:
        """The config with the job's and the fold's overrides, dumped next to the fold."""
        cfg = copy.deepcopy(self.configs[run.config])
        cfg.merge_from_dict(cv.fold_overrides(cfg, self.folds_files[run.repeat], run))
        # Config.dump() gives the text of a Python config; written atomically, a killed run
        # never leaves a half-written fold config behind.
        return write_text_atomic(run.config_file(self.job.work_dir), cfg.dump())

    def __call__(self, run: cv.FoldRun) -> dict:
        start = time.perf_counter()
        directory = run.directory(self.job.work_dir)
        directory.mkdir(parents=True, exist_ok=True)
        metrics_file = directory / "test_metrics.json"
        seed = self.job.fold_seed(run)
        command = [*self.train_command(), self.write_fold_config(run), "--work-dir", directory,
                   "--resume", "--seed", seed, "--test-after", metrics_file,
                   "--launcher", self.job.launcher]  # fmt: skip
        run_command(
            command,
            f"training and testing {run.name} {run.label}",
            log=directory / "run.log",
            append=True,
            env=threads_env(self.threads, override=False),  # the caller's setting wins
            announce=None,
        )
        metrics = json.loads(metrics_file.read_text())
        result = cv.fold_result(
            run, seed, self.folds_files[run.repeat], metrics, time.perf_counter() - start
        )
        result.update(threads=self.threads, environment=machine_environment())
        # The result first: a run killed while pruning has nothing left to redo, whereas the
        # reverse order could prune the tested checkpoint of a fold that has to test it again.
        write_json_atomic(run.result_file(self.job.work_dir), result)
        prune_checkpoints(directory, Path(result["checkpoint"]), self.job.keep_checkpoints)
        return result


def first_fold(todo: Sequence[cv.FoldRun]) -> cv.FoldRun | None:
    """The next fold to run: the first one left."""
    return todo[0] if todo else None


def run_folds(
    job: CrossValidation,
    runner: FoldRunner,
    todo: list[cv.FoldRun],
    total: int,
    next_run: Callable[[Sequence[cv.FoldRun]], cv.FoldRun | None] = first_fold,
    on_start: Callable[[cv.FoldRun], object] | None = None,
    on_finish: Callable[[cv.FoldRun, dict, object], str] | None = None,
) -> list[tuple[cv.FoldRun, str]]:
    """Train and test the folds of ``todo``, ``jobs`` at a time: the one fold executor of the
    cross-validation and the backbone leaderboard. A failed fold is reported, not fatal.

    Args:
        runner: trains and tests one fold.
        todo: the folds to run; those :func:`next_run` never picks (say, over a time budget)
            are left in it.
        total: all folds of the job, finished ones included (for the progress line).
        next_run: picks the next fold from those left, or None to stop.
        on_start: called (under the runner's lock) as a fold starts; what it returns is
            passed to ``on_finish``.
        on_finish: called (under the lock) with a finished fold's result; what it returns is
            appended to the fold's progress line.

    Returns:
        (fold, error) of every fold that failed.
    """
    failures: list[tuple[cv.FoldRun, str]] = []
    counter = dict(finished=total - len(todo))
    start = time.perf_counter()

    def worker() -> None:
        while True:
            with runner.lock:  # one line per message, whichever job prints
                run = None if stopping() else next_run(todo)  # stopping: SIGTERM or Ctrl-C
                if run is None:
                    return
                todo.remove(run)
                print(f"[{run.name}] {run.label}: training (fold {run.fold} tests, "
                      f"{run.val_fold} validates)", flush=True)  # fmt: skip
                context = on_start(run) if on_start is not None else None
            try:
                result = runner(run)
            except Exception as error:  # one bad fold must not stop the others
                with runner.lock:
                    failures.append((run, str(error)))
                    print(f"[{run.name}] {run.label}: FAILED, see "
                          f"{run.directory(job.work_dir)}/run.log", flush=True)  # fmt: skip
                continue
            with runner.lock:
                note = on_finish(run, result, context) if on_finish is not None else ""
                counter["finished"] += 1
                metrics = result["metrics"]
                elapsed = time.perf_counter() - start
                print(
                    f"[{run.name}] {run.label}: infant accuracy {metrics['subject/accuracy']:.3f}, "
                    f"MCC {metrics['subject/mcc']:.3f} in {result['seconds']:.0f} s "
                    f"({counter['finished']}/{total} done, {elapsed / 60:.1f} min){note}",
                    flush=True,
                )

    with ThreadPoolExecutor(max_workers=max(1, job.jobs)) as pool:
        for future in [pool.submit(worker) for _ in range(max(1, job.jobs))]:
            future.result()
    return failures


def execute(
    job: CrossValidation,
    runs: Sequence[cv.FoldRun],
    configs: Mapping[str, Config],
    folds_files: dict[int, Path],
) -> list[tuple[cv.FoldRun, str]]:
    """Run the unfinished folds (``jobs`` at a time); a failed fold is reported, not fatal."""
    todo = []
    for run in runs:
        result = cv.read_result(job.work_dir, run)
        if result is None:
            todo.append(run)
        else:  # finish the pruning a killed run may have left undone
            directory = run.directory(job.work_dir)
            prune_checkpoints(directory, Path(result["checkpoint"]), job.keep_checkpoints)
    done = len(runs) - len(todo)
    print(f"{len(runs)} fold runs, {done} already finished, {len(todo)} to run", flush=True)
    return run_folds(job, FoldRunner(job, configs, folds_files), todo, len(runs))


def cross_validate(job: CrossValidation, report_only: bool = False) -> int:
    """Check, run the unfinished folds (unless ``report_only``), write the report.

    Returns the exit code: 0 done, 1 some folds failed (each named on stderr), 2 bad input
    (a missing config, too few GPUs, configs of different infants, mismatched folds) or a work
    dir held by another driver, refused before anything is written.
    """
    for config in job.configs:
        if not Path(config).is_file():
            print(f"error: config {config} not found", file=sys.stderr)
            return 2
    if job.launcher == "pytorch" and gpus_missing(job.gpus):
        print(
            f"error: --launcher pytorch --gpus {job.gpus} needs that many CUDA GPUs; use "
            "--gpus with the number of visible GPUs or fewer",
            file=sys.stderr,
        )
        return 2
    job.configs = [str(Path(c)) for c in job.configs]
    try:
        lock = lock_work_dir(job.work_dir)
    except WorkDirInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stop_children_on_signals()  # the folds' children run from worker threads
    with lock:
        return _cross_validate(job, report_only)


def _cross_validate(job: CrossValidation, report_only: bool) -> int:
    try:
        runs = cv.plan_runs(job.configs, job.folds, job.repeats)
        configs = load_configs(job)
        folds_files = make_folds(job, configs)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures = [] if report_only else execute(job, runs, configs, folds_files)
    print(cv.write_report(job.work_dir, runs, job.folds, job.repeats, job.seed))
    print(f"report: {job.work_dir / 'report.md'} (also report.csv, comparison.png)")
    for run, error in failures:
        print(f"FAILED {run.name} {run.label}: {error}", file=sys.stderr)
    return 1 if failures else 0
