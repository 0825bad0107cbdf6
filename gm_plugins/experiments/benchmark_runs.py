"""The synthetic benchmark's runs: one training + test of a config with a seed on given data,
run ``jobs`` at a time with a progress line, and recorded in (or restored from) the results
store (see :mod:`gm_plugins.experiments.benchmark`).

Each run trains with one torch thread (:data:`RUN_THREADS`), so its figures do not depend on
how many runs share the machine. Its work dir says what it ran under: ``store_key.json`` (its
key, written as it starts) and ``run.json`` (written last) hold its :func:`run_key` (the
resolved config with its data, cache and override options and chains, the sha256 of every
preprocessing checkpoint, the seed), the sha256 of its caches' chain records, its threads, the
processor with its instruction set and the package versions. A resumed benchmark redoes (and
says so) a run whose work dir holds another key, or none, instead of mixing it in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gm_plugins.experiments import results_store as rs
from gm_plugins.experiments.shipped import TRAIN
from gm_plugins.utils.io import write_json_atomic
from gm_plugins.utils.processes import (
    CommandError,
    finished,
    module_command,
    start_command,
    threads_env,
)

#: Torch threads of every benchmark run (the issue's "one thread per run").
RUN_THREADS = 1


@dataclass
class Run:
    """One training + test of a config with a seed on given data."""

    name: str
    config: str
    seed: int
    work_dir: Path
    train_root: str
    val_root: str
    test_root: str
    train_cache: str
    test_cache: str
    cost: float = 1.0
    options: tuple[str, ...] = ()
    #: For the results store: the experiment it belongs to, the preprocessing chains of its
    #: caches and the generator arguments of its datasets (part of its key).
    experiment: str = ""
    chains: tuple[str, ...] = ()
    data: tuple[str, ...] = ()

    @property
    def record(self) -> Path:
        """Written last: the run finished (``seconds``, validation and test figures)."""
        return self.work_dir / "run.json"

    @property
    def predictions(self) -> Path:
        return self.work_dir / "test_infants.json"

    def done(self) -> bool:
        return self.record.is_file()

    @property
    def key_file(self) -> Path:
        """The key the run was started with (:func:`run_key`)."""
        return self.work_dir / "store_key.json"

    def caches(self) -> list[str]:
        """The cache folders the run reads (validation infants with the training chain)."""
        return list(dict.fromkeys([f"{self.train_root}/{self.train_cache}",
                                   f"{self.val_root}/{self.train_cache}",
                                   f"{self.test_root}/{self.test_cache}"]))  # fmt: skip

    def data_options(self) -> list[str]:
        """``--cfg-options`` naming the run's data and caches."""
        data = []
        for loader, root, cache in (
            ("train", self.train_root, self.train_cache),
            ("val", self.val_root, self.train_cache),
            ("test", self.test_root, self.test_cache),
        ):
            data += [
                f"{loader}_dataloader.dataset.data_root={root}",
                f"{loader}_dataloader.dataset.cache_root={root}/{cache}",
            ]
        return data

    def key_options(self) -> list[str]:
        """What besides its config decides the run's result: data, caches, overrides."""
        return [*self.data_options(), *self.options, *self.data]

    def command(self) -> list[str]:
        data = self.data_options()
        return module_command(
            TRAIN,
            self.config,
            "--work-dir",
            self.work_dir,
            "--resume",
            "--seed",
            self.seed,
            "--test-after",
            self.work_dir / "test_metrics.json",
            "--cfg-options",
            *data,
            f"test_evaluator.out_file={self.predictions}",
            *self.options,
        )


def validation_figures(work_dir: str | os.PathLike) -> dict:
    """Validation metrics of a finished run at its chosen checkpoint (``best_*epoch_N.pth``,
    else the last epoch), read from mmengine's ``vis_data/scalars.json`` files."""
    work_dir = Path(work_dir)
    by_epoch: dict[int, dict] = {}
    for scalars in sorted(work_dir.glob("*/vis_data/scalars.json")):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if "subject/accuracy" in record:
                by_epoch[int(record["step"])] = record
    if not by_epoch:
        raise ValueError(f"{work_dir}: no validation records in */vis_data/scalars.json")
    best = [
        int(m.group(1))
        for p in work_dir.glob("best_*.pth")
        if (m := re.search(r"epoch_(\d+)\.pth$", p.name))
    ]
    epoch = max(best) if best and max(best) in by_epoch else max(by_epoch)
    record = by_epoch[epoch]
    return dict(
        epoch=epoch,
        accuracy=float(record["subject/accuracy"]),
        mcc=float(record["subject/mcc"]),
        cross_entropy=float(record["window/cross_entropy"]),
        window_accuracy=float(record["window/accuracy"]),
    )


def run_key(run: Run, root: str | os.PathLike = ".", missing_ok: bool = False) -> rs.RunKey:
    """What decides the run's result, as the results store keys it: the resolved config with
    the run's data, cache and override options and its chains, the sha256 of every
    preprocessing checkpoint of its chains (None where missing, with ``missing_ok``), the seed.
    """
    return rs.RunKey(
        run.experiment,
        run.name,
        run.config,
        rs.config_sha256(run.config, run.key_options(), run.chains, root),
        rs.chain_checkpoints(run.chains, root, missing_ok=missing_ok),
        run.seed,
    )


def key_fields(key: rs.RunKey) -> dict:
    """A key as its JSON files hold it."""
    return rs.rounded(dataclasses.asdict(key))


def cache_hashes(run: Run, root: str | os.PathLike = ".") -> dict[str, str | None]:
    """The sha256 of each of the run's caches' ``preprocess_pipeline.json`` (the chain, its
    model files and settings the cache was written with; None where there is none)."""
    hashes: dict[str, str | None] = {}
    for cache in run.caches():
        record = Path(root) / cache / "preprocess_pipeline.json"
        hashes[cache] = rs.file_sha256(record) if record.is_file() else None
    return hashes


def started_key(run: Run) -> dict | None:
    """The key the run's work dir says it ran under: ``run.json``'s, else ``store_key.json``'s
    (None: neither says)."""
    for path, field_name in ((run.record, "key"), (run.key_file, None)):
        if path.is_file():
            document = json.loads(path.read_text())
            found = document.get(field_name) if field_name else document
            if found:
                return found
    return None


def finish_run(
    run: Run, seconds: float, root: str | os.PathLike = ".", threads: int | None = None
) -> dict:
    """Write ``run.json`` (the run's completion mark) from its outputs, with its key, its
    caches' hashes, its threads and the machine it ran on."""
    metrics = json.loads((run.work_dir / "test_metrics.json").read_text())
    if not run.predictions.is_file():
        raise FileNotFoundError(f"{run.predictions} missing after the test of {run.name}")
    record = dict(
        name=run.name,
        config=run.config,
        seed=run.seed,
        seconds=seconds,
        val=validation_figures(run.work_dir),
        test={key: value for key, value in metrics.items() if isinstance(value, (int, float))},
        checkpoint=metrics.get("checkpoint"),
        key=key_fields(run_key(run, root)),
        caches=cache_hashes(run, root),
        threads=threads,
        **rs.machine_environment(),
    )
    write_json_atomic(run.record, record)
    return record


def settle_unrecorded(run: Run, root: str | os.PathLike = ".") -> bool:
    """Whether a run needs no training without a results store: it finished under its current
    key. A work dir of another key (or of none: from before runs recorded theirs) is set
    aside, said, and the run redone."""
    if not run.work_dir.exists():
        return False
    started = started_key(run)
    if started == key_fields(run_key(run, root)):
        return run.done()
    if started is None and not any(run.work_dir.iterdir()):
        return False  # nothing ran there yet
    why = "another key" if started is not None else "no recorded key"
    aside = rs.set_aside(run.work_dir)
    print(f"[{run.name}] {run.work_dir} ran under {why}: moved to {aside}; running it again",
          flush=True)  # fmt: skip
    return False


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class Progress:
    """Counts runs and estimates the time left from the measured seconds per unit of cost."""

    total: int
    remaining_cost: float
    jobs: int
    done: int = 0
    seconds_per_cost: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def finished(self, run: Run, seconds: float | None) -> str:
        self.done += 1
        self.remaining_cost -= run.cost
        if seconds is not None:
            self.seconds_per_cost.append(seconds / run.cost)
        elapsed = time.perf_counter() - self.started
        if self.seconds_per_cost:
            eta = format_duration(
                max(self.remaining_cost, 0.0) * np.mean(self.seconds_per_cost) / self.jobs
            )
        else:
            eta = "?"
        took = "reused" if seconds is None else f"done in {format_duration(seconds)}"
        elapsed_text = format_duration(elapsed)
        return f"[{self.done}/{self.total}] {run.name} {took}; elapsed {elapsed_text}, ETA {eta}"


def run_all(
    runs: Sequence[Run],
    root: Path,
    jobs: int,
    phase: str,
    recorder: Recorder | None = None,
    budget: rs.Budget | None = None,
    threads: int | None = None,
) -> list[str]:
    """Run what is not done, ``jobs`` at a time, each with :data:`RUN_THREADS` torch threads
    (or ``threads``).

    A run counts as done when its work dir finished under its current key (:func:`run_key`);
    one that ran under another key is set aside and redone. With a ``recorder``, a run with a
    matching stored record counts as done and every finished run is recorded at once. With a
    ``budget``, a run starts only while its estimated seconds fit in what is left; the others
    go to ``budget.left_out``. A failed run is reported (its log's end) and the others go on.
    Returns the failed names.
    """
    if recorder is None:
        todo = [run for run in runs if not settle_unrecorded(run, root)]
    else:
        todo = [run for run in runs if not recorder.settle(run)]
    print(f"\n{phase}: {len(runs)} runs, {len(runs) - len(todo)} done already", flush=True)
    if not todo:
        return []
    threads = threads or RUN_THREADS
    env = threads_env(threads)
    todo.sort(key=lambda run: -run.cost)
    progress = Progress(len(todo), sum(run.cost for run in todo), jobs)
    estimate = _estimator(recorder, runs, todo, progress) if budget is not None else None
    running: list[tuple[Run, subprocess.Popen, float, str]] = []
    failed: list[str] = []
    while todo or running:
        while len(running) < jobs:
            run = next((r for r in todo if budget is None or budget.fits(estimate(r))), None)
            if run is None:
                break
            todo.remove(run)
            run.work_dir.mkdir(parents=True, exist_ok=True)
            key = recorder.key(run) if recorder is not None else run_key(run, root)
            write_json_atomic(run.key_file, key_fields(key))
            log = run.work_dir / "train.log"
            process = start_command(
                run.command(),
                log=log,
                append=log.is_file(),
                env=env,
                cwd=root,
                announce=f"[{run.name}] ",
            )
            running.append((run, process, time.perf_counter(), rs.utc_now()))
        if not running:  # nothing left fits in the budget
            break
        time.sleep(0.5)
        for entry in [entry for entry in running if finished(entry[1])]:
            running.remove(entry)
            run, process, begin, started = entry
            seconds = time.perf_counter() - begin
            try:
                if process.returncode != 0:
                    raise CommandError(
                        run.name, process.args, process.returncode, run.work_dir / "train.log"
                    )
                finish_run(run, seconds, root, threads)
                if recorder is not None:
                    recorder.store_finished(run, started, threads)
                print(progress.finished(run, seconds), flush=True)
            except (CommandError, FileNotFoundError, ValueError) as error:
                failed.append(run.name)
                progress.total -= 1
                print(f"[{run.name}] FAILED: {error}", flush=True)
    if todo and budget is not None:
        budget.leave_out(run.name for run in todo)
        print(
            f"{phase}: {len(todo)} run(s) left for a later invocation (they do not fit in what "
            f"is left of the {budget.seconds / 60:g} min budget): "
            + ", ".join(run.name for run in todo),
            flush=True,
        )
    return failed


def _estimator(recorder: Recorder | None, runs: Sequence[Run], todo: Sequence[Run], progress):
    """Expected seconds of a run: stored runs of its config, else its cost times the seconds per
    cost of the phase's stored and finished runs (None: nothing known)."""
    per_cost: list[float] = []
    measured: dict[str, list[float]] = {}
    if recorder is not None:
        for run in runs:
            record = recorder.store.read(run.experiment, run.name)
            if record is not None and record.get("seconds"):
                per_cost.append(record["seconds"] / run.cost)
        stored = recorder.store.seconds_by_config()
        for run in todo:
            measured[run.name] = stored.get(recorder.key(run).config_sha256, [])

    def estimate(run: Run) -> float | None:
        return rs.estimate_seconds(
            measured.get(run.name, []), run.cost, per_cost + progress.seconds_per_cost
        )

    return estimate


def read_record(run: Run) -> dict:
    return json.loads(run.record.read_text())


def materialise(run: Run, record: Mapping, source: str | os.PathLike = "") -> None:
    """Write what the reports read of a finished run (its predictions, then ``run.json``) from
    its stored record."""
    write_json_atomic(
        run.predictions, rs.predictions_document(record["test_infants"], record["test"]), indent=2
    )
    done = dict(
        name=run.name,
        config=run.config,
        seed=run.seed,
        seconds=record["seconds"],
        val=record["validation"],
        test=record["test"],
        checkpoint=None,
        results_record=str(source),
    )
    write_json_atomic(run.record, done)


class Recorder:
    """The results store seen from the benchmark: run keys, records written and read back."""

    def __init__(self, store: rs.ResultsStore, root: Path) -> None:
        self.store, self.root = store, root
        self.finished: list[str] = []  # recorded by this invocation
        self._keys: dict[tuple, rs.RunKey] = {}

    def key(self, run: Run, missing_ok: bool = False) -> rs.RunKey:
        """The run's store key (``missing_ok``: checkpoints not on this machine hash as None)."""
        memo = (run.experiment, run.name, run.config, run.seed, tuple(run.key_options()),
                run.chains, missing_ok)  # fmt: skip
        if memo not in self._keys:
            self._keys[memo] = run_key(run, self.root, missing_ok)
        return self._keys[memo]

    def key_fields(self, run: Run) -> dict:
        return key_fields(self.key(run))

    def path(self, run: Run) -> Path:
        return self.store.path(run.experiment, run.name)

    def settle(self, run: Run) -> bool:
        """Whether ``run`` needs no training: it has a matching record (written back into its
        work dir if missing there) or finished in its work dir under its current key (recorded
        now). A stale record is reported; a work dir started under another key is set aside."""
        key = self.key(run)
        found = self.store.lookup(key)
        if found.status == "match":
            if not run.done():
                materialise(run, found.record, self.path(run))
                print(f"[{run.name}] from the results store: {self.path(run)}", flush=True)
            return True
        started = started_key(run)
        ours = started == self.key_fields(run)
        if found.status == "stale":
            print(f"[{run.name}] the stored record {self.path(run)} is stale "
                  f"({'; '.join(found.why)}): running it again", flush=True)  # fmt: skip
        # A work dir of another key, or one that does not say its key, is not mixed in.
        if run.work_dir.exists() and not ours and (started or found.status == "stale"
                                                   or any(run.work_dir.iterdir())):  # fmt: skip
            aside = rs.set_aside(run.work_dir)
            why = "another key" if started else "no recorded key"
            print(f"[{run.name}] {run.work_dir} ran under {why}: moved to {aside}", flush=True)
        if run.done():  # finished before it was recorded (or before the store existed)
            self.store_finished(run, None, None)
            return True
        return False

    def store_finished(self, run: Run, start_time: str | None, threads: int | None) -> Path:
        """Record a finished run (its ``run.json`` and predictions) in the store."""
        done = read_record(run)
        record = rs.build_record(
            self.key(run),
            seconds=done.get("seconds"),
            validation=done.get("val"),
            test=done.get("test"),
            infants=rs.infants_from_predictions(run.predictions),
            start_time=start_time,
            threads=threads if threads is not None else done.get("threads"),
            root=self.root,
        )
        path = self.store.write(record)
        self.finished.append(run.name)
        print(f"[{run.name}] recorded in {path}", flush=True)
        return path

    def materialise_matching(self, run: Run) -> bool:
        """Write the run's record into its work dir if it matches (checkpoints not on this
        machine are not checked); whether it did. For reports from the store alone."""
        found = self.store.lookup(self.key(run, missing_ok=True))
        if found.status == "stale":
            print(f"[{run.name}] the stored record {self.path(run)} is stale "
                  f"({'; '.join(found.why)}): left out", flush=True)  # fmt: skip
        if found.status != "match":
            return False
        materialise(run, found.record, self.path(run))
        return True
