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
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.io import write_json_atomic, write_text_atomic
from ..utils.processes import CommandError, python_command, run_command, start_command, threads_env

BENCH = "configs/benchmark"
PREPROCESS = "configs/preprocess"
#: Variants of the RGB stream (see configs/benchmark/_base_/rgb-r18c32.py), in report order.
RGB_VARIANTS = ("scratch", "frozen-random", "pose-pretrained", "pose-pretrained-frozen")


@dataclass(frozen=True)
class DataSet:
    """A dataset folder and its tools/make_synthetic_dataset.py arguments (besides --out)."""

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

    @property
    def record(self) -> Path:
        """Written last: the run finished (``seconds``, validation and test figures)."""
        return self.work_dir / "run.json"

    @property
    def predictions(self) -> Path:
        return self.work_dir / "test_infants.json"

    def done(self) -> bool:
        return self.record.is_file()

    def command(self) -> list[str]:
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
        return python_command(
            "tools/train.py",
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


def run_all(runs: Sequence[Run], root: Path, jobs: int, phase: str) -> list[str]:
    """Run what is not done, ``jobs`` at a time, each with cores // jobs threads.

    A failed run is reported (its log's end) and the others go on. Returns the failed names.
    """
    todo = [run for run in runs if not run.done()]
    print(f"\n{phase}: {len(runs)} runs, {len(runs) - len(todo)} done already", flush=True)
    if not todo:
        return []
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = threads_env(threads)
    todo.sort(key=lambda run: -run.cost)
    progress = Progress(len(todo), sum(run.cost for run in todo), jobs)
    running: list[tuple[Run, subprocess.Popen, float]] = []
    failed: list[str] = []
    while todo or running:
        while todo and len(running) < jobs:
            run = todo.pop(0)
            run.work_dir.mkdir(parents=True, exist_ok=True)
            log = run.work_dir / "train.log"
            process = start_command(
                run.command(),
                log=log,
                append=log.is_file(),
                env=env,
                cwd=root,
                announce=f"[{run.name}] ",
            )
            running.append((run, process, time.perf_counter()))
        time.sleep(0.5)
        for entry in [entry for entry in running if entry[1].poll() is not None]:
            running.remove(entry)
            run, process, begin = entry
            seconds = time.perf_counter() - begin
            try:
                if process.returncode != 0:
                    raise CommandError(
                        run.name, process.args, process.returncode, run.work_dir / "train.log"
                    )
                finish_run(run, seconds)
                print(progress.finished(run, seconds), flush=True)
            except (CommandError, FileNotFoundError, ValueError) as error:
                failed.append(run.name)
                progress.total -= 1
                print(f"[{run.name}] FAILED: {error}", flush=True)
    return failed


def read_record(run: Run) -> dict:
    return json.loads(run.record.read_text())


# ----------------------------------------------------------------------------------------------
# Planning
# ----------------------------------------------------------------------------------------------


def config_stem(config: str) -> str:
    return Path(config).stem


class Planner:
    """The runs of an experiment of ``bench`` under ``work_dir``."""

    def __init__(self, bench: Benchmark, work_dir: Path) -> None:
        self.bench, self.work_dir = bench, work_dir

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
    from ..evaluation.statistics import infant_bootstrap, mcnemar_exact, paired_bootstrap

    loaded = {key: load_predictions(runs) for key, runs in rows.items()}
    ids = loaded[reference][0]
    summary = {}
    for key, (these, labels, predictions) in loaded.items():
        if these != ids:
            raise ValueError(f"{key} was tested on other infants than {reference}")
        figures = infant_bootstrap(labels, predictions, resamples=resamples)
        records = [read_record(run) for run in rows[key]]
        figures["window_accuracy"] = float(np.mean([r["test"]["window/accuracy"] for r in records]))
        figures["seconds"] = float(sum(r["seconds"] for r in records))
        figures["val_accuracy"] = float(np.mean([r["val"]["accuracy"] for r in records]))
        if key != reference:
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
            else "reference"
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
    from ..evaluation.statistics import plot_bars_with_ci

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
    tools/preprocess_videos.py runs and says what is wrong."""
    import contextlib

    from .preprocessing import check_cache

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
        self, bench: Benchmark, root: Path, work_dir: Path, jobs: int = 2, workers: int = 2
    ) -> None:
        self.bench, self.root, self.work_dir = bench, root, work_dir
        self.jobs, self.workers = jobs, workers
        self.planner = Planner(bench, work_dir)
        self.timings: dict[str, float] = {}

    def _timed(self, name: str, command: list[str]) -> None:
        begin = time.perf_counter()
        run_command(command, name, cwd=self.root, announce="\n")
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - begin

    def prepare(self, caches: Sequence[tuple[str, str]]) -> None:
        """Datasets, preprocessing models (trained once per machine) and the caches."""
        from .experiments import Model, chain_models, prepare_model

        roots = sorted({root for root, _ in caches})
        for dataset in self.bench.datasets:
            if dataset.root in roots and not dataset_complete(dataset, self.root):
                self._timed(
                    f"data {dataset.root}",
                    python_command(
                        "tools/make_synthetic_dataset.py",
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
                python_command(
                    "tools/preprocess_videos.py",
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

    def _make_stage(self, name: str, key: str, script: str, *args: object):
        from ..utils.processes import Stage

        return Stage(name, python_command(script, *args))

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

    def study(self) -> list[str]:
        """Seed 0 of every variant and all seeds of the methods without variants."""
        return run_all(self.planner.study_runs(), self.root, self.jobs, "variant study")

    def table1(self) -> int:
        self.prepare(self.table1_caches())
        failed = self.study()
        if failed:
            return self._failed(failed, "table1")
        planner = self.planner
        chosen_runs = {m.key: planner.chosen_runs(m) for m in self.bench.methods}
        failed = run_all(
            [r for runs in chosen_runs.values() for r in runs],
            self.root,
            self.jobs,
            "chosen variants' seeds",
        )
        if failed:
            return self._failed(failed, "table1")
        self.report_table1(chosen_runs)
        return 0

    def confounding(self) -> int:
        self.prepare(self.table1_caches() + self.confounding_caches())
        failed = run_all(
            [
                r
                for r in self.planner.study_runs()
                if r.name.startswith(self.bench.confounding_method + "/")
            ],
            self.root,
            self.jobs,
            "variant study of the confounding model",
        )
        if not failed:
            runs = self.planner.confounding_runs()
            failed = run_all(runs, self.root, self.jobs, "confounding")
        if failed:
            return self._failed(failed, "confounding")
        self.report_confounding(runs)
        return 0

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

    def report_table1(self, chosen_runs: Mapping[str, list[Run]]) -> Path:
        bench, planner = self.bench, self.planner
        titles = {m.key: m.title for m in bench.methods}
        summary = summarise(chosen_runs, bench.reference, bench.resamples)
        study, chosen, test = {}, {}, {}
        for method in bench.methods:
            chosen[method.key], figures = planner.chosen_variant(method)
            if figures:
                study[method.key] = figures
                test[method.key] = {
                    v: read_record(planner.table1_run(method, v, 0))["test"]["subject/accuracy"]
                    for v in figures
                }
        all_runs = planner.study_runs() + [r for runs in chosen_runs.values() for r in runs]
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
            "Table 1 on the synthetic benchmark (test infants)",
        )
        text = "\n\n".join(
            [
                "# Table 1 on the synthetic benchmark",
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
        write_json_atomic(out / "summary.json", dict(summary=summary, chosen=chosen, study=study))
        print("\n" + text, flush=True)
        return path

    def report_confounding(self, runs: Sequence[Run]) -> Path:
        bench = self.bench
        titles = {arm.key: arm.title for arm in bench.arms}
        rows = {arm.key: [run] for arm, run in zip(bench.arms, runs, strict=True)}
        reference = bench.arms[0].key
        summary = summarise(rows, reference, bench.resamples)
        timings = self._wall_time("confounding", runs)
        out = self.work_dir / "confounding"
        figure = write_figure(
            out / "confounding.png",
            summary,
            titles,
            reference,
            "Confounded training, independent test infants",
        )
        text = "\n\n".join(
            [
                "# Confounding experiment on the synthetic benchmark",
                f"Trained on {bench.confound_train} (environment tied to the class), checkpoint "
                f"chosen on {bench.confound_val}, tested on {bench.test} (environment independent "
                "of class).",
                results_table(summary, titles, reference),
                f"Compute: {_duration(timings['total_seconds'])}.",
                f"![confounding]({figure.name})",
            ]
        )
        path = write_text_atomic(out / "report.md", text + "\n")
        write_json_atomic(out / "summary.json", dict(summary=summary))
        print("\n" + text, flush=True)
        return path


def run_benchmark(
    name: str,
    root: str | os.PathLike,
    work_dir: str | os.PathLike,
    bench: Benchmark = BENCHMARK,
    jobs: int = 2,
    workers: int = 2,
) -> int:
    """Run ``'table1'`` or ``'confounding'``; returns the exit code."""
    root = Path(root).resolve()
    work_dir = Path(work_dir)
    if not work_dir.is_absolute():
        work_dir = root / work_dir
    driver = BenchmarkDriver(bench, root, work_dir, jobs=jobs, workers=workers)
    begin = time.perf_counter()
    try:
        code = driver.table1() if name == "table1" else driver.confounding()
    except CommandError as error:
        print(
            f"\n{name}: {error}\n$ {' '.join(error.command)}\nFix it and run `make {name}` "
            "again: what finished is kept.",
            flush=True,
        )
        return 1
    print(f"\n{name}: this invocation took {_duration(time.perf_counter() - begin)}", flush=True)
    return code
