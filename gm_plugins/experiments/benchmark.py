"""The synthetic benchmark behind ``make table1`` and ``make confounding``.

One definition (:data:`BENCHMARK`) names everything: datasets made with fixed seeds and split by
infant once (infants that train the preprocessing models, infants that train classifiers,
validation infants that pick checkpoints and settings, 300 test infants that are only tested),
the evaluation-grade preprocessing chain, the methods with their seeds and the RGB-stream
variants compared on validation infants (from scratch, frozen random, started from the pose
model's backbone, fine-tuned or kept).

``table1`` runs every method (each run is ``tools/train.py CONFIG --seed S --test-after``, its
data named on the command line), picks each method's RGB variant by validation accuracy, runs
the chosen variant's further seeds, and reports infant-level accuracy and MCC as mean ± sd over
seeds, a bootstrap 95 % CI over test infants, and paired comparisons with the paper's
two-stream model. ``confounding`` trains the chosen two-stream model on infants whose
environment is tied to their class, with and without background removal and alignment, and
tests it on the same independent test infants.

Everything is resumable: datasets and caches skip what exists, each run resumes from its last
checkpoint, and a finished run (``run.json`` written last) is never run again. Runs go
``jobs`` at a time, with a progress line and an ETA after each.

With a results store (:mod:`gm_plugins.experiments.results_store`, what tools/run_benchmark.py
uses), every finished run is also recorded under ``results/<experiment>/``; a run with a matching
record is not run again (its record is written back into the work dir), one with a stale record is
redone, ``budget_minutes`` launches only the runs that fit, ``report=True`` rebuilds the tables
from the records alone and ``verify`` reruns stored runs to compare them with their records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gm_plugins.experiments import results_store as rs
from gm_plugins.experiments.shipped import MAKE_DATASET, PREPROCESS_VIDEOS, TRAIN
from gm_plugins.utils.io import write_json_atomic, write_text_atomic
from gm_plugins.utils.processes import (
    CommandError,
    module_command,
    run_command,
    start_command,
    threads_env,
)

BENCH = "configs/benchmark"
PREPROCESS = "configs/preprocess"
#: Variants of the RGB stream (see configs/benchmark/_base_/rgb-r18c32.py), in report order.
RGB_VARIANTS = ("scratch", "frozen-random", "pose-pretrained", "pose-pretrained-frozen")


@dataclass(frozen=True)
class DataSet:
    """A dataset folder and its tools/data/make_synthetic_dataset.py arguments (besides --out)."""

    root: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Method:
    """One row of Table 1.

    Attributes:
        key: short name (run folders, the reference).
        title: row title.
        configs: variant name -> classifier config ('' for a method without variants).
        seeds: seeds of the chosen variant (the others run seed 0 only).
        follows: take the variant chosen for this other method instead of choosing.
        cost: training time relative to the two-stream model (for the ETA only).
    """

    key: str
    title: str
    configs: Mapping[str, str]
    seeds: int = 1
    follows: str | None = None
    cost: float = 1.0


@dataclass(frozen=True)
class Arm:
    """One row of the confounding experiment: the cache its videos come from."""

    key: str
    title: str
    cache: str


@dataclass(frozen=True)
class Benchmark:
    """Everything the benchmark makes and runs (paths relative to the repository root).

    Attributes:
        datasets: every dataset made.
        chains: cache folder name -> preprocessing config.
        train, val, test: dataset roots of Table 1's split.
        cache: Table 1's cache name.
        methods: Table 1's rows; ``reference`` is the paper's model.
        confound_train, confound_val: roots of the confounding experiment's training infants
            (tested on ``test``); ``arms`` its rows, ``confounding_method`` the model trained.
        extra_options: ``--cfg-options`` added to every run (the miniature's short schedule).
        resamples: bootstrap resamples.
    """

    datasets: tuple[DataSet, ...]
    chains: Mapping[str, str]
    train: str
    val: str
    test: str
    cache: str
    methods: tuple[Method, ...]
    reference: str
    confound_train: str
    confound_val: str
    arms: tuple[Arm, ...]
    confounding_method: str
    extra_options: tuple[str, ...] = ()
    resamples: int = 10000

    def method(self, key: str) -> Method:
        return next(method for method in self.methods if method.key == key)


def _variants(family: str) -> dict[str, str]:
    return {variant: f"{BENCH}/{family}_rgb-{variant}_bench.py" for variant in RGB_VARIANTS}


def _dataset(root: str, subjects: int, seed: int, confound: float = 0.0) -> DataSet:
    args = (
        "--subjects",
        str(subjects),
        "--seconds",
        "10",
        "--seed",
        str(seed),
        "--confound",
        str(confound),
        "--prep-subjects",
        "0",
    )
    return DataSet(root, args)


#: The benchmark. The preprocessing models train on other infants (data/gm_preprocessing and
#: the extra infants of data/gm_synthetic, seed 0; `make preprocessing`).
BENCHMARK = Benchmark(
    datasets=(
        _dataset("data/gm_bench/train", 120, 101),
        _dataset("data/gm_bench/val", 60, 102),
        _dataset("data/gm_bench/test", 300, 103),
        _dataset("data/gm_bench/confound_train", 120, 104, confound=1.0),
        _dataset("data/gm_bench/confound_val", 60, 105, confound=1.0),
    ),
    chains={
        "cache_eval64": f"{PREPROCESS}/preprocess_unet-c16-seg_res18-192-pose_farneback-k30-"
        "s3.75-64_benchmark.py",
        "cache_eval64_no-bg": f"{PREPROCESS}/preprocess_unet-c16-seg_res18-192-pose_farneback-"
        "k30-s3.75-64_no-background-removal_benchmark.py",
        "cache_eval64_no-align": f"{PREPROCESS}/preprocess_unet-c16-seg_farneback-64_"
        "no-alignment_benchmark.py",
        "cache_none64": f"{PREPROCESS}/preprocess_farneback-64_no-background-removal_"
        "no-alignment_demo.py",
    },
    train="data/gm_bench/train",
    val="data/gm_bench/val",
    test="data/gm_bench/test",
    cache="cache_eval64",
    methods=(
        Method(
            "two-stream",
            "two-stream, concat-conv fusion (the paper)",
            _variants("two-stream"),
            seeds=3,
        ),
        Method(
            "spatial-only",
            "only spatial (one RGB frame)",
            _variants("spatial-only"),
            seeds=3,
            cost=0.5,
        ),
        Method(
            "temporal-only",
            "only temporal (flow)",
            {"": f"{BENCH}/temporal-only_bench.py"},
            seeds=3,
            cost=0.6,
        ),
        Method(
            "late-fusion", "two-stream, late fusion", _variants("late-fusion"), follows="two-stream"
        ),
        Method("c3d", "C3D (quarter width, 6 frames)", {"": f"{BENCH}/c3d_bench.py"}),
        Method("tsn", "TSN, RGB (3 frames)", _variants("tsn"), cost=1.2),
        Method("cnn-lstm", "CNN + LSTM (3 frames)", _variants("cnn-lstm"), cost=1.2),
    ),
    reference="two-stream",
    confound_train="data/gm_bench/confound_train",
    confound_val="data/gm_bench/confound_val",
    arms=(
        Arm("both", "background removal + body alignment (the paper)", "cache_eval64"),
        Arm("alignment-only", "body alignment only (background kept)", "cache_eval64_no-bg"),
        Arm(
            "background-removal-only",
            "background removal only (whole frame)",
            "cache_eval64_no-align",
        ),
        Arm("neither", "neither (whole frame, background kept)", "cache_none64"),
    ),
    confounding_method="two-stream",
)


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------


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
        """The store key the run was started with (results store only)."""
        return self.work_dir / "store_key.json"

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


def finish_run(run: Run, seconds: float) -> dict:
    """Write ``run.json`` (the run's completion mark) from its outputs."""
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
    )
    write_json_atomic(run.record, record)
    return record


def _duration(seconds: float) -> str:
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
            eta = _duration(
                max(self.remaining_cost, 0.0) * np.mean(self.seconds_per_cost) / self.jobs
            )
        else:
            eta = "?"
        took = "reused" if seconds is None else f"done in {_duration(seconds)}"
        return (
            f"[{self.done}/{self.total}] {run.name} {took}; elapsed {_duration(elapsed)}, ETA {eta}"
        )


def run_all(
    runs: Sequence[Run],
    root: Path,
    jobs: int,
    phase: str,
    recorder: Recorder | None = None,
    budget: rs.Budget | None = None,
    threads: int | None = None,
) -> list[str]:
    """Run what is not done, ``jobs`` at a time, each with cores // jobs threads (or
    ``threads``).

    With a ``recorder``, a run with a matching stored record counts as done and every finished
    run is recorded at once. With a ``budget``, a run starts only while its estimated seconds fit
    in what is left; the others go to ``budget.left_out``. A failed run is reported (its log's
    end) and the others go on. Returns the failed names.
    """
    if recorder is None:
        todo = [run for run in runs if not run.done()]
    else:
        todo = [run for run in runs if not recorder.settle(run)]
    print(f"\n{phase}: {len(runs)} runs, {len(runs) - len(todo)} done already", flush=True)
    if not todo:
        return []
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
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
            if recorder is not None:
                write_json_atomic(run.key_file, recorder.key_fields(run))
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
        for entry in [entry for entry in running if entry[1].poll() is not None]:
            running.remove(entry)
            run, process, begin, started = entry
            seconds = time.perf_counter() - begin
            try:
                if process.returncode != 0:
                    raise CommandError(
                        run.name, process.args, process.returncode, run.work_dir / "train.log"
                    )
                finish_run(run, seconds)
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
            self._keys[memo] = rs.RunKey(
                run.experiment,
                run.name,
                run.config,
                rs.config_sha256(run.config, run.key_options(), run.chains, self.root),
                rs.chain_checkpoints(run.chains, self.root, missing_ok=missing_ok),
                run.seed,
            )
        return self._keys[memo]

    def key_fields(self, run: Run) -> dict:
        return rs.rounded(dataclasses.asdict(self.key(run)))

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
        started = json.loads(run.key_file.read_text()) if run.key_file.is_file() else None
        ours = started == self.key_fields(run)
        if found.status == "stale":
            print(f"[{run.name}] the stored record {self.path(run)} is stale "
                  f"({'; '.join(found.why)}): running it again", flush=True)  # fmt: skip
        if run.work_dir.exists() and not ours and (found.status == "stale" or started):
            aside = rs.set_aside(run.work_dir)
            print(
                f"[{run.name}] {run.work_dir} ran under another key: moved to {aside}", flush=True
            )
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
            threads=threads,
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


# ----------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------


def config_stem(config: str) -> str:
    return Path(config).stem


class Planner:
    """The runs of an experiment of ``bench`` under ``work_dir``."""

    def __init__(self, bench: Benchmark, work_dir: Path) -> None:
        self.bench, self.work_dir = bench, work_dir

    def data_key(self, *roots: str) -> tuple[str, ...]:
        """The generator arguments of the datasets at ``roots`` (part of a run's store key)."""
        made = {dataset.root: dataset.args for dataset in self.bench.datasets}
        return tuple(f"{root}: {' '.join(made.get(root, ()))}" for root in roots)

    def table1_run(self, method: Method, variant: str, seed: int) -> Run:
        bench, config = self.bench, method.configs[variant]
        label = f"{method.key}/{variant}" if variant else method.key
        return Run(
            f"{label} seed {seed}",
            config,
            seed,
            self.work_dir / "table1" / config_stem(config) / f"seed{seed}",
            bench.train,
            bench.val,
            bench.test,
            bench.cache,
            bench.cache,
            method.cost,
            bench.extra_options,
            "table1",
            (bench.chains[bench.cache],),
            self.data_key(bench.train, bench.val, bench.test),
        )

    def study_runs(self) -> list[Run]:
        """Seed 0 of every variant of methods that choose, every seed of the others."""
        runs = []
        for method in self.bench.methods:
            if method.follows:
                continue
            if len(method.configs) > 1:
                runs += [self.table1_run(method, variant, 0) for variant in method.configs]
            else:
                variant = next(iter(method.configs))
                runs += [self.table1_run(method, variant, seed) for seed in range(method.seeds)]
        return runs

    def chosen_variant(self, method: Method) -> tuple[str, dict[str, dict]]:
        """The variant with the best validation accuracy (then MCC, then lower cross-entropy)
        among seed-0 runs, and every variant's validation figures."""
        if method.follows:
            return self.chosen_variant(self.bench.method(method.follows))[0], {}
        if len(method.configs) == 1:
            return next(iter(method.configs)), {}
        figures = {
            variant: read_record(self.table1_run(method, variant, 0))["val"]
            for variant in method.configs
        }
        best = max(
            figures,
            key=lambda v: (figures[v]["accuracy"], figures[v]["mcc"], -figures[v]["cross_entropy"]),
        )
        return best, figures

    def chosen_runs(self, method: Method) -> list[Run]:
        variant, _ = self.chosen_variant(method)
        return [self.table1_run(method, variant, seed) for seed in range(method.seeds)]

    def confounding_runs(self) -> list[Run]:
        bench = self.bench
        method = bench.method(bench.confounding_method)
        variant, _ = self.chosen_variant(method)
        config = method.configs[variant]
        return [
            Run(
                f"confounding/{arm.key}",
                config,
                0,
                self.work_dir / "confounding" / arm.key / config_stem(config),
                bench.confound_train,
                bench.confound_val,
                bench.test,
                arm.cache,
                arm.cache,
                method.cost,
                bench.extra_options,
                "confounding",
                (bench.chains[arm.cache],),
                self.data_key(bench.confound_train, bench.confound_val, bench.test),
            )
            for arm in bench.arms
        ]


# ----------------------------------------------------------------------------------------------
# Statistics and reports
# ----------------------------------------------------------------------------------------------


def load_predictions(runs: Sequence[Run]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-infant test decisions of runs on the same test infants.

    Returns:
        subject ids (N,), labels (N,), predictions (S, N) in the order of ``runs``.
    """
    ids: list[str] | None = None
    labels, predictions = None, []
    for run in runs:
        subjects = json.loads(run.predictions.read_text())["subjects"]
        subjects = sorted(subjects, key=lambda s: s["subject_id"])
        these = [s["subject_id"] for s in subjects]
        if ids is None:
            ids, labels = these, np.array([s["label"] for s in subjects])
        elif these != ids:
            raise ValueError(f"{run.predictions} scores other infants than {runs[0].predictions}")
        predictions.append([s["predicted"] for s in subjects])
    return ids or [], np.asarray(labels), np.asarray(predictions)


def _ci(low: float, high: float) -> str:
    return f"{low:.3f}-{high:.3f}"


def _mean_sd(mean: float, sd: float) -> str:
    return f"{mean:.3f}" if np.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def summarise(rows: Mapping[str, Sequence[Run]], reference: str, resamples: int) -> dict[str, dict]:
    """Bootstrap figures of each row's runs and their paired comparison with ``reference``."""
    from gm_plugins.evaluation.statistics import infant_bootstrap, mcnemar_exact, paired_bootstrap

    loaded = {key: load_predictions(runs) for key, runs in rows.items()}
    first = reference if reference in loaded else next(iter(loaded))  # a partial report: any
    ids = loaded[first][0]
    summary = {}
    for key, (these, labels, predictions) in loaded.items():
        if these != ids:
            raise ValueError(f"{key} was tested on other infants than {first}")
        figures = infant_bootstrap(labels, predictions, resamples=resamples)
        records = [read_record(run) for run in rows[key]]
        figures["window_accuracy"] = float(np.mean([r["test"]["window/accuracy"] for r in records]))
        figures["seconds"] = float(sum(r["seconds"] for r in records))
        figures["val_accuracy"] = float(np.mean([r["val"]["accuracy"] for r in records]))
        if key != reference and reference in loaded:
            reference_predictions = loaded[reference][2]
            figures["paired"] = paired_bootstrap(
                labels, predictions, reference_predictions, resamples=resamples
            )
            figures["mcnemar"] = mcnemar_exact(labels, predictions[0], reference_predictions[0])
        summary[key] = figures
    return summary


def results_table(summary: Mapping[str, dict], titles: Mapping[str, str], reference: str) -> str:
    """Markdown: one row per method, test infants."""
    lines = [
        "| Method | seeds | infant accuracy (mean ± sd) | 95 % CI | MCC (mean ± sd) | 95 % CI "
        f"| accuracy minus {reference} (95 % CI) | p (paired bootstrap) | p (McNemar, seed 0) "
        "| window accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, f in sorted(summary.items(), key=lambda item: -item[1]["accuracy"]):
        paired, mcnemar = f.get("paired"), f.get("mcnemar")
        comparison = (
            f"{paired['difference']:+.3f} ({paired['ci_low']:+.3f} to {paired['ci_high']:+.3f})"
            if paired
            else ("reference" if key == reference else "n/a")
        )
        lines.append(
            f"| {titles[key]} | {f['num_seeds']} | {_mean_sd(f['accuracy'], f['accuracy_sd'])} "
            f"| {_ci(f['accuracy_ci_low'], f['accuracy_ci_high'])} "
            f"| {_mean_sd(f['mcc'], f['mcc_sd'])} | {_ci(f['mcc_ci_low'], f['mcc_ci_high'])} "
            f"| {comparison} | {_p(paired['p_value']) if paired else ''} "
            f"| {_p(mcnemar['p_value']) if mcnemar else ''} | {f['window_accuracy']:.3f} |"
        )
    return "\n".join(lines)


def ordering_statement(
    summary: Mapping[str, dict], reference: str, others: Sequence[str], titles: Mapping[str, str]
) -> str:
    """Whether the reference is above each of ``others``, in words, with the paired p."""
    if reference not in summary:
        return f"No ordering statement: {titles[reference]} has no finished runs yet."
    parts = []
    for key in others:
        if key not in summary:
            continue
        paired = summary[key]["paired"]
        above = paired["difference"] < 0  # other minus reference
        significant = paired["p_value"] < 0.05
        verdict = ("above" if above else "not above") + (
            " (significant at 5 %)" if significant else " (not significant at 5 %)"
        )
        parts.append(
            f"- {titles[reference]} is {verdict} {titles[key]}: difference "
            f"{-paired['difference']:+.3f}, p = {_p(paired['p_value'])}"
        )
    holds = all(summary[k]["paired"]["difference"] < 0 for k in others if k in summary)
    head = (
        "The paper's ordering holds here"
        if holds
        else "The paper's ordering does not hold here in full"
    )
    return head + " (point estimates; see each p):\n" + "\n".join(parts)


def variant_table(
    study: Mapping[str, dict[str, dict]],
    chosen: Mapping[str, str],
    test: Mapping[str, dict[str, float]],
    titles: Mapping[str, str],
) -> str:
    """Markdown: validation figures of every RGB variant (the choice), and its seed-0 test
    accuracy for information only."""
    lines = [
        "| Method | RGB stream | val accuracy | val MCC | val cross-entropy | chosen "
        "| test accuracy (seed 0, not used to choose) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, figures in study.items():
        for variant, f in figures.items():
            mark = "yes" if chosen[key] == variant else ""
            lines.append(
                f"| {titles[key]} | {variant} | {f['accuracy']:.3f} | {f['mcc']:.3f} "
                f"| {f['cross_entropy']:.3f} | {mark} | {test[key][variant]:.3f} |"
            )
    return "\n".join(lines)


def write_figure(
    path: Path, summary: Mapping[str, dict], titles: Mapping[str, str], reference: str, title: str
) -> Path:
    from gm_plugins.evaluation.statistics import plot_bars_with_ci

    keys = sorted(summary, key=lambda k: -summary[k]["accuracy"])
    return plot_bars_with_ci(
        path,
        [titles[k] for k in keys],
        [summary[k]["accuracy"] for k in keys],
        [summary[k]["accuracy_ci_low"] for k in keys],
        [summary[k]["accuracy_ci_high"] for k in keys],
        ylabel="infant accuracy on the test infants (95 % bootstrap CI)",
        title=title,
        chance=1 / 3,
        highlight=keys.index(reference) if reference in keys else None,
    )


# ----------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------


def dataset_complete(dataset: DataSet, root: Path) -> bool:
    """Whether ``dataset`` was generated to its end with exactly its arguments."""
    meta_file = root / dataset.root / "meta.json"
    if not meta_file.is_file():
        return False
    meta = json.loads(meta_file.read_text())
    arguments = meta.get("arguments", {})
    for flag, value in zip(dataset.args[::2], dataset.args[1::2], strict=True):
        recorded = arguments.get(flag.lstrip("-").replace("-", "_"))
        if recorded is None or (str(recorded) != value and _number(recorded) != _number(value)):
            return False
    return bool(meta.get("complete"))


def _number(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def cache_complete(chain: str, data_root: str, cache_root: str, root: Path) -> bool:
    """Whether every video of ``data_root`` is in ``cache_root``, written by ``chain`` (its steps
    and model files unchanged); no subprocess needed then. Anything unclear: False, and
    tools/data/preprocess_videos.py runs and says what is wrong."""
    import contextlib

    from gm_plugins.preprocess.jobs import check_cache

    with contextlib.chdir(root):
        if not (Path(cache_root) / "preprocess_pipeline.json").is_file():
            return False
        try:
            check = check_cache(chain, data_root, cache_root)
        except (ValueError, OSError):
            return False
    return bool(check.subjects) and all(s.status == "cached" for s in check.subjects)


class BenchmarkDriver:
    """Prepares the data and runs an experiment of ``bench`` from the repository ``root``."""

    def __init__(
        self,
        bench: Benchmark,
        root: Path,
        work_dir: Path,
        jobs: int = 2,
        workers: int = 2,
        store: rs.ResultsStore | None = None,
        budget: rs.Budget | None = None,
    ) -> None:
        self.bench, self.root, self.work_dir = bench, root, work_dir
        self.jobs, self.workers = jobs, workers
        self.planner = Planner(bench, work_dir)
        self.timings: dict[str, float] = {}
        self.recorder = Recorder(store, root) if store is not None else None
        self.budget = budget

    def _timed(self, name: str, command: list[str]) -> None:
        begin = time.perf_counter()
        run_command(command, name, cwd=self.root, announce="\n")
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - begin

    def prepare(self, caches: Sequence[tuple[str, str]]) -> None:
        """Datasets, preprocessing models (trained once per machine) and the caches."""
        from gm_plugins.experiments.shipped import Model, chain_models, prepare_model

        roots = sorted({root for root, _ in caches})
        for dataset in self.bench.datasets:
            if dataset.root in roots and not dataset_complete(dataset, self.root):
                self._timed(
                    f"data {dataset.root}",
                    module_command(
                        MAKE_DATASET,
                        "--out",
                        dataset.root,
                        *dataset.args,
                        "--workers",
                        self.workers,
                        "--quiet",
                    ),
                )
        models: list[Model] = []
        for name in dict.fromkeys(name for _, name in caches):
            models += [
                m for m in chain_models(self.bench.chains[name], self.root) if m not in models
            ]
        for model in models:
            prepare_model(model, self.root, self._run_stage, self._make_stage)
        for root, name in caches:
            if cache_complete(self.bench.chains[name], root, f"{root}/{name}", self.root):
                print(f"{root}/{name}: every video cached by this chain; reused", flush=True)
                continue
            self._timed(
                f"cache {root}/{name}",
                module_command(
                    PREPROCESS_VIDEOS,
                    self.bench.chains[name],
                    "--data-root",
                    root,
                    "--out",
                    f"{root}/{name}",
                    "--workers",
                    self.workers,
                    "--quiet",
                ),
            )

    def _make_stage(self, name: str, key: str, module: str, *args: object):
        from gm_plugins.utils.processes import Stage

        return Stage(name, module_command(module, *args))

    def _run_stage(self, stage) -> None:
        self._timed(stage.name, stage.command)

    def table1_caches(self) -> list[tuple[str, str]]:
        bench = self.bench
        return [(root, bench.cache) for root in (bench.train, bench.val, bench.test)]

    def confounding_caches(self) -> list[tuple[str, str]]:
        bench = self.bench
        return [
            (root, arm.cache)
            for arm in bench.arms
            for root in (bench.confound_train, bench.confound_val, bench.test)
        ]

    def _run_all(self, runs: Sequence[Run], phase: str) -> list[str]:
        return run_all(runs, self.root, self.jobs, phase, self.recorder, self.budget)

    def study(self) -> list[str]:
        """Seed 0 of every variant and all seeds of the methods without variants."""
        return self._run_all(self.planner.study_runs(), "variant study")

    def table1(self) -> int:
        self.prepare(self.table1_caches())
        failed = self.study()
        if failed:
            return self._failed(failed, "table1")
        if self._out_of_budget("table1", "the chosen variants' further seeds, then the report"):
            return 0
        planner = self.planner
        chosen_runs = {m.key: planner.chosen_runs(m) for m in self.bench.methods}
        failed = self._run_all(
            [r for runs in chosen_runs.values() for r in runs], "chosen variants' seeds"
        )
        if failed:
            return self._failed(failed, "table1")
        if self._out_of_budget("table1", "the report"):
            return 0
        self.report_table1(chosen_runs)
        return 0

    def confounding(self) -> int:
        self.prepare(self.table1_caches() + self.confounding_caches())
        failed = self._run_all(
            [
                r
                for r in self.planner.study_runs()
                if r.name.startswith(self.bench.confounding_method + "/")
            ],
            "variant study of the confounding model",
        )
        if not failed and self._out_of_budget("confounding", "the arms, then the report"):
            return 0
        if not failed:
            runs = self.planner.confounding_runs()
            failed = self._run_all(runs, "confounding")
        if failed:
            return self._failed(failed, "confounding")
        if self._out_of_budget("confounding", "the report"):
            return 0
        self.report_confounding(runs)
        return 0

    def _out_of_budget(self, name: str, then: str) -> bool:
        """Whether the budget left runs out; if so, says what was done and what remains."""
        if self.budget is None or not self.budget.left_out:
            return False
        done = self.recorder.finished if self.recorder is not None else []
        print(
            f"\n{name}: stopped within the budget of {self.budget.seconds / 60:g} min. Recorded "
            f"by this invocation: {len(done)} run(s){': ' if done else ''}{', '.join(done)}.\n"
            f"Remaining: {', '.join(self.budget.left_out)}; then {then}. Commit results/ and "
            "run the same command again (here or on another machine) to go on.",
            flush=True,
        )
        return True

    def _failed(self, failed: Sequence[str], name: str) -> int:
        print(
            f"\n{name}: {len(failed)} run(s) failed: {', '.join(failed)}. Their logs are "
            f"train.log in their folders under {self.work_dir}; fix the cause and run the "
            "same command again (finished runs are kept).",
            flush=True,
        )
        return 1

    def _wall_time(self, name: str, runs: Sequence[Run]) -> dict:
        """Seconds spent: this invocation's preparation plus every run's own seconds."""
        path = self.work_dir / name / "timings.json"
        previous = json.loads(path.read_text()) if path.is_file() else {}
        preparation = dict(previous.get("preparation", {}))
        for stage, seconds in self.timings.items():
            preparation[stage] = preparation.get(stage, 0.0) + seconds
        run_seconds = {run.name: read_record(run)["seconds"] for run in runs}
        timings = dict(
            preparation=preparation,
            runs=run_seconds,
            total_seconds=sum(preparation.values()) + sum(run_seconds.values()),
        )
        write_json_atomic(path, timings)
        return timings

    def report_table1(
        self, chosen_runs: Mapping[str, list[Run]], missing: Sequence[str] = ()
    ) -> Path | None:
        """Table 1 of the finished runs; ``missing`` (runs not finished) makes it partial."""
        bench, planner = self.bench, self.planner
        titles = {m.key: m.title for m in bench.methods}
        chosen_runs = {key: runs for key, runs in chosen_runs.items() if runs}
        if not chosen_runs:
            print(f"\ntable1: no finished runs of any method yet; missing: {', '.join(missing)}")
            return None
        summary = summarise(chosen_runs, bench.reference, bench.resamples)
        study, chosen, test = {}, {}, {}
        for method in bench.methods:
            try:
                chosen[method.key], figures = planner.chosen_variant(method)
            except FileNotFoundError:  # a partial report: the variant study is not complete
                continue
            if figures:
                study[method.key] = figures
                test[method.key] = {
                    v: read_record(planner.table1_run(method, v, 0))["test"]["subject/accuracy"]
                    for v in figures
                }
        all_runs = planner.study_runs() + [r for runs in chosen_runs.values() for r in runs]
        all_runs = [r for r in all_runs if r.done()]
        timings = self._wall_time("table1", list({r.record: r for r in all_runs}.values()))
        paper_others = [
            k for k in ("spatial-only", "temporal-only", "c3d", "cnn-lstm") if k in summary
        ]
        out = self.work_dir / "table1"
        figure = write_figure(
            out / "table1.png",
            summary,
            titles,
            bench.reference,
            "Table 1 on the synthetic benchmark (test infants)" + (" (partial)" if missing else ""),
        )
        text = "\n\n".join(
            [
                "# Table 1 on the synthetic benchmark" + (" (partial)" if missing else ""),
                *_partial_note(missing),
                f"Test infants: {next(iter(summary.values()))['num_infants']} "
                f"({bench.test}); bootstrap: {bench.resamples} resamples of the test infants.",
                results_table(summary, titles, bench.reference),
                ordering_statement(summary, bench.reference, paper_others, titles),
                "## RGB stream variants (chosen on the validation infants)",
                variant_table(study, chosen, test, titles),
                f"Compute: {_duration(timings['total_seconds'])} (runs and preparation; see "
                "timings.json).",
                f"![Table 1]({figure.name})",
            ]
        )
        path = write_text_atomic(out / "report.md", text + "\n")
        result = dict(summary=summary, chosen=chosen, study=study)
        if missing:
            result["missing"] = list(missing)
        write_json_atomic(out / "summary.json", result)
        print("\n" + text, flush=True)
        return path

    def report_confounding(self, runs: Sequence[Run], missing: Sequence[str] = ()) -> Path | None:
        """The confounding experiment of the finished ``runs`` (one per arm, in arm order)."""
        bench = self.bench
        titles = {arm.key: arm.title for arm in bench.arms}
        rows = {arm.key: [run] for arm, run in zip(bench.arms, runs, strict=True) if run.done()}
        if not rows:
            print(f"\nconfounding: no finished arms yet; missing: {', '.join(missing)}")
            return None
        reference = bench.arms[0].key
        summary = summarise(rows, reference, bench.resamples)
        timings = self._wall_time("confounding", [r for r in runs if r.done()])
        out = self.work_dir / "confounding"
        figure = write_figure(
            out / "confounding.png",
            summary,
            titles,
            reference,
            "Confounded training, independent test infants" + (" (partial)" if missing else ""),
        )
        text = "\n\n".join(
            [
                "# Confounding experiment on the synthetic benchmark"
                + (" (partial)" if missing else ""),
                *_partial_note(missing),
                f"Trained on {bench.confound_train} (environment tied to the class), checkpoint "
                f"chosen on {bench.confound_val}, tested on {bench.test} (environment independent "
                "of class).",
                results_table(summary, titles, reference),
                f"Compute: {_duration(timings['total_seconds'])}.",
                f"![confounding]({figure.name})",
            ]
        )
        path = write_text_atomic(out / "report.md", text + "\n")
        result = dict(summary=summary)
        if missing:
            result["missing"] = list(missing)
        write_json_atomic(out / "summary.json", result)
        print("\n" + text, flush=True)
        return path

    # -- from the results store ----------------------------------------------------------------

    def _stored_plan(self, name: str) -> tuple[dict[str, list[Run]], list[str]]:
        """The experiment's runs with their records written into the planner's work dir:
        rows (method or arm key -> finished runs) and the runs still missing."""
        assert self.recorder is not None
        planner, recorder, bench = self.planner, self.recorder, self.bench
        study = planner.study_runs()
        if name == "confounding":
            prefix = bench.confounding_method + "/"
            study = [r for r in study if r.name.startswith(prefix)]
        missing = [r.name for r in study if not recorder.materialise_matching(r)]
        rows: dict[str, list[Run]] = {}
        if name == "table1":
            for method in bench.methods:
                try:
                    runs = planner.chosen_runs(method)
                except FileNotFoundError:
                    chooser = method.follows or method.key
                    missing.append(f"{method.key}: its runs, once the variant study of "
                                   f"{chooser} is complete")  # fmt: skip
                    continue
                for run in runs:
                    if not run.done() and not recorder.materialise_matching(run):
                        missing.append(run.name)
                rows[method.key] = [run for run in runs if run.done()]
        else:
            try:
                runs = planner.confounding_runs()
            except FileNotFoundError:
                return {}, [*missing, *(f"confounding/{arm.key}" for arm in bench.arms)]
            for arm, run in zip(bench.arms, runs, strict=True):
                if not recorder.materialise_matching(run):
                    missing.append(run.name)
                rows[arm.key] = [run]
        return rows, list(dict.fromkeys(missing))

    def report_from_store(self, name: str) -> int:
        """Every table and figure of ``name`` from the store's records alone (the runs'
        files are written to a temporary folder); partial, with the missing runs named, while
        runs are missing."""
        with tempfile.TemporaryDirectory(prefix="gm-report-") as scratch:
            self.planner = Planner(self.bench, Path(scratch))
            rows, missing = self._stored_plan(name)
            if missing:
                print(f"\n{name}: {len(missing)} run(s) missing from the results store "
                      f"({self.recorder.store.root}): {', '.join(missing)}")  # fmt: skip
            if name == "table1":
                self.report_table1(rows, missing)
            elif rows:
                self.report_confounding([rows[arm.key][0] for arm in self.bench.arms], missing)
            else:
                print(f"\nconfounding: nothing to report yet; missing: {', '.join(missing)}")
            self.planner = Planner(self.bench, self.work_dir)
        return 0

    def verify(self, name: str, count: int, seed: int = 0, tolerance: int = 0) -> int:
        """Rerun ``count`` stored runs of ``name`` (drawn with ``seed``), each in a temporary
        work dir, and compare them with their records (never overwritten).

        Returns 1 when a run changed more than ``tolerance`` test decisions or failed, else 0.
        """
        assert self.recorder is not None
        self.prepare(self.table1_caches() + (self.confounding_caches() if name ==
                     "confounding" else []))  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="gm-verify-plan-") as scratch:
            self.planner = Planner(self.bench, Path(scratch))
            rows, _ = self._stored_plan(name)
            stored = {r.name: r for r in self.planner.study_runs() if r.done()}
            if name == "confounding":
                prefix = self.bench.confounding_method + "/"
                stored = {n: r for n, r in stored.items() if n.startswith(prefix)}
            stored.update({r.name: r for runs in rows.values() for r in runs})
            self.planner = Planner(self.bench, self.work_dir)
        names = rs.choose_for_verify(stored, count, seed)
        print(f"\n{name}: verifying {len(names)} of {len(stored)} stored runs (seed {seed}, "
              f"tolerance {tolerance} changed decision(s)): {', '.join(names)}")  # fmt: skip
        worst = 0
        for run_name in names:
            run = stored[run_name]
            record = self.recorder.store.read(run.experiment, run.name)
            why = self.recorder.key(run).differences(record)  # checkpoints checked here
            if why:
                print(f"[verify] {run.name}: the record is stale on this machine "
                      f"({'; '.join(why)})", flush=True)  # fmt: skip
                worst = 1
                continue
            with tempfile.TemporaryDirectory(prefix="gm-verify-") as scratch:
                again = dataclasses.replace(run, work_dir=Path(scratch) / "run")
                failed = run_all(
                    [again], self.root, 1, f"verify {run.name}", threads=record.get("threads")
                )
                if failed:
                    worst = 1
                    continue
                infants = rs.infants_from_predictions(again.predictions)
            comparison = rs.compare_infants(record["test_infants"], infants)
            print(rs.verify_line(run.name, comparison, tolerance), flush=True)
            if comparison["decisions_changed"] > tolerance:
                worst = 1
        return worst


def _partial_note(missing: Sequence[str]) -> list[str]:
    if not missing:
        return []
    return [
        f"**Partial**: {len(missing)} run(s) are not finished yet and are left out: "
        + ", ".join(missing)
        + "."
    ]


def run_benchmark(
    name: str,
    root: str | os.PathLike,
    work_dir: str | os.PathLike,
    bench: Benchmark = BENCHMARK,
    jobs: int = 2,
    workers: int = 2,
    store: rs.ResultsStore | None = None,
    budget_minutes: float | None = None,
    report: bool = False,
    verify: int = 0,
    verify_seed: int = 0,
    verify_tolerance: int = 0,
) -> int:
    """Run ``'table1'`` or ``'confounding'``; returns the exit code.

    Args:
        store: record finished runs there and reuse matching records (None: work dir only).
        budget_minutes: launch only runs that fit in this many minutes, then stop (exit 0).
        report: only rebuild the report from the store's records (no training).
        verify: rerun this many stored runs (drawn with ``verify_seed``) and compare; exit 1
            when one changed more than ``verify_tolerance`` test decisions.
    """
    root = Path(root).resolve()
    work_dir = Path(work_dir)
    if not work_dir.is_absolute():
        work_dir = root / work_dir
    if (report or verify) and store is None:
        raise ValueError("--report and --verify read the results store: give one")
    budget = rs.Budget(budget_minutes) if budget_minutes is not None else None
    driver = BenchmarkDriver(
        bench, root, work_dir, jobs=jobs, workers=workers, store=store, budget=budget
    )
    begin = time.perf_counter()
    try:
        if report:
            code = driver.report_from_store(name)
        elif verify:
            code = driver.verify(name, verify, verify_seed, verify_tolerance)
        else:
            code = driver.table1() if name == "table1" else driver.confounding()
    except CommandError as error:
        print(
            f"\n{name}: {error}\n$ {' '.join(error.command)}\nFix it and run `make {name}` "
            "again: what finished is kept.",
            flush=True,
        )
        return 1
    except rs.RecordError as error:
        print(f"\n{name}: {error}", flush=True)
        return 1
    print(f"\n{name}: this invocation took {_duration(time.perf_counter() - begin)}", flush=True)
    return code
