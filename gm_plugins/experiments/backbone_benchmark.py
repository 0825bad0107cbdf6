"""Backbone leaderboard: what each two-stream config costs, how fast it runs, how well it does.

tools/analysis_tools/benchmark_backbones.py parses its arguments and calls
:func:`benchmark_backbones`. For each config it

1. builds the recognizer, counts its parameters and the FLOPs of one window at the config's
   ``model.input_shapes`` (mmengine's ``FlopAnalyzer``);
2. times training (data preprocessor, forward, backward and an AdamW step at the config's train
   batch size) and inference (``test_step`` at its test batch size) on random windows of that
   shape, with a fixed number of torch threads: the median of a few timings after warm-up;
3. cross-validates it with :func:`~gm_plugins.experiments.cross_validation.cross_validate`, every
config
   on the same folds.

The leaderboard ranks the configs by infant accuracy (mean ± sd over folds, with a 95 % bootstrap
interval over infants) and adds MCC, cost and speed.

Work directory layout::

    W/figures/<config>.json   parameters, FLOPs and speeds of one config, and what they were
                              measured with (a rerun with other settings measures again)
    W/cv/                     the cross-validation (folds, per-fold runs, report.md)
    W/leaderboard.md, W/leaderboard.csv, W/leaderboard.png

Every file is written complete or not at all, and a rerun measures and trains only what is
missing, so a killed run, rerun, writes the same leaderboard as an uninterrupted one.

With a results store (:mod:`gm_plugins.experiments.results_store`, ``results/backbones/`` from
tools/analysis_tools/benchmark_backbones.py) every config's cost and speed and every finished fold
is also recorded (``<config>/cost-and-speed.json``, ``<config>/repeat<r>_fold<f>.json``, with each
test infant's decision); a matching record stands in for the measurement or the fold, so a rerun on
another machine with the committed store trains only what is missing. ``budget_minutes``
launches only folds whose expected time fits (stored folds of the config, else the folds'
seconds per training sample measured so far scaled by the config's training speed), ``report``
rebuilds the leaderboard from the records alone and ``verify`` reruns stored folds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mmengine.config import Config

from gm_plugins.benchmarks.inputs import random_windows
from gm_plugins.benchmarks.timing import items_per_second
from gm_plugins.datasets.subjects import GM_CLASSES
from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.evaluation.statistics import (  # re-exported: users import them from here too
    accuracy_from_confusion,
    bootstrap_intervals,
    mcc_from_confusion,
)
from gm_plugins.experiments import results_store as rs
from gm_plugins.experiments.cross_validation import (
    KEEP_CHOICES,
    CrossValidation,
    FoldRunner,
    cross_validate,
    make_folds,
    prune_checkpoints,
    run_folds,
)
from gm_plugins.utils.config import load_config
from gm_plugins.utils.io import remove_stale_temporaries, write_json_atomic, write_text_atomic

#: The demo config; the default list is it and every swap of its backbones (both relative to
#: the repository, :attr:`BackboneBenchmark.root`).
DEMO_CONFIG = "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"
BACKBONE_CONFIGS = "configs/backbones"
#: Resamples of the bootstrap intervals (percentile method), drawn with a fixed seed.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
#: Leaderboard CSV columns: accuracy and MCC are infant level; ``*_pooled`` over all folds'
#: decisions (the plot's points), ``*_ci_low/high`` the bootstrap interval around them.
COLUMNS = (
    "config", "rgb_backbone", "flow_backbone", "runs",
    "accuracy_mean", "accuracy_sd", "accuracy_pooled", "accuracy_ci_low", "accuracy_ci_high",
    "mcc_mean", "mcc_sd", "mcc_pooled", "mcc_ci_low", "mcc_ci_high",
    "parameters", "flops_per_window", "train_samples_per_s", "inference_windows_per_s",
)  # fmt: skip


@dataclass(frozen=True)
class SpeedSettings:
    """How speeds are timed: ``repeats`` timings of ``steps`` steps after ``warmup`` steps."""

    threads: int = 2
    warmup: int = 2
    steps: int = 5
    repeats: int = 3


@dataclass
class BackboneBenchmark:
    """One leaderboard: its configs, the cross-validation and how speeds are timed.

    Attributes:
        configs: two-stream configs (reported by file name); empty: :func:`default_configs`.
        root: the repository: the default configs are found there and records name configs
            relative to it (default: the working directory).
        work_dir: figures, the cross-validation (``cv/``) and the leaderboard.
        skip_cv: train nothing; accuracy comes from the folds already finished in ``cv/``.
        cfg_options: overrides applied to every config (for measuring and training).
        store: the results store (None: the work dir only).
        budget_minutes: launch only folds that fit in this many minutes (with a store).
        report: only rebuild the leaderboard from the store's records.
        verify: rerun this many stored folds (drawn with ``verify_seed``) and compare them;
            exit 1 when one changed more than ``verify_tolerance`` test decisions.
    """

    configs: list[str]
    work_dir: Path
    folds: int = 5
    seed: int = 0
    repeats: int = 1
    jobs: int = 1
    keep_checkpoints: str = "tested"
    skip_cv: bool = False
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    cfg_options: Mapping = field(default_factory=dict)
    store: rs.ResultsStore | None = None
    budget_minutes: float | None = None
    report: bool = False
    verify: int = 0
    verify_seed: int = 0
    verify_tolerance: int = 0
    root: Path = Path(".")

    def cross_validation(self) -> CrossValidation:
        return CrossValidation(
            configs=list(self.configs),
            work_dir=self.work_dir / "cv",
            folds=self.folds,
            seed=self.seed,
            repeats=self.repeats,
            jobs=self.jobs,
            keep_checkpoints=self.keep_checkpoints,
            cfg_options=self.cfg_options,
        )


def default_configs(root: str | os.PathLike = ".") -> list[str]:
    """The demo config and every config under configs/backbones/ (by file name) of ``root``."""
    root = Path(root)
    swaps = sorted(str(p) for p in (root / BACKBONE_CONFIGS).glob("*.py"))
    return [str(root / DEMO_CONFIG), *swaps]


# -- cost ------------------------------------------------------------------------------------


def describe_backbone(backbone: Mapping | None) -> str:
    """A backbone config in a few words: ``ResNet-18 (3 stages)``, ``X3D``, ``—`` for none."""
    if not backbone:
        return "—"
    text = str(backbone.get("type", "?"))
    if backbone.get("depth") is not None:
        text += f"-{backbone['depth']}"
    if backbone.get("num_stages") is not None:
        text += f" ({backbone['num_stages']} stages)"
    return text


def describe_backbones(cfg: Config) -> dict[str, str]:
    """Each stream's backbone (``rgb``, ``flow``) as :func:`describe_backbone` puts it."""
    return {s: describe_backbone(cfg.model.get(f"{s}_backbone")) for s in ("rgb", "flow")}


def build_recognizer(cfg: Config, config: str) -> torch.nn.Module:
    """The config's recognizer on the CPU, in eval mode, with the shapes of one window.

    Raises:
        ValueError: the model has no ``input_shapes`` (a two-stream recognizer gets them from
            ``model.input_shapes``), naming the config and the fix.
    """
    from gm_plugins.models.loading import load_recognizer

    torch.manual_seed(0)
    model = load_recognizer(copy.deepcopy(cfg))
    if not getattr(model, "input_shapes", None):
        raise ValueError(
            f"{config}: the model has no input shapes to measure it at; give the "
            "MultiStreamRecognizer model.input_shapes=dict(rgb=(T, 3, H, W), flow=(L, 2, H, W)), "
            "as configs/_base_/models/two-stream_r18-3stage-concat-fusion.py does"
        )
    return model


class WindowClassifier(torch.nn.Module):
    """A recognizer as a module of tensors, what a FLOP counter traces: one (N, T, C, H, W)
    tensor per stream, in the recognizer's stream order, in; class scores (N, K) out."""

    def __init__(self, recognizer: torch.nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer
        self.streams = tuple(recognizer.stream_layouts)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        batch = dict(zip(self.streams, inputs, strict=True))
        return self.recognizer.extract_feat(batch, stage="head")[0]


def count_flops(recognizer: torch.nn.Module) -> tuple[int, list[str]]:
    """FLOPs of one window at ``recognizer.input_shapes`` and the operators left uncounted.

    mmengine's FlopAnalyzer counts one multiply-add as one FLOP (convolutions, linear layers,
    normalisation); element-wise operators and pooling are listed as uncounted.
    """
    from mmengine.analysis import FlopAnalyzer

    module = WindowClassifier(recognizer).eval()
    inputs = tuple(torch.zeros(1, *recognizer.input_shapes[s]) for s in module.streams)
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = int(analyzer.total())
    return flops, sorted(analyzer.unsupported_ops())


# -- speed -----------------------------------------------------------------------------------


def measure_speed(
    recognizer: torch.nn.Module, train_batch: int, test_batch: int, speed: SpeedSettings
) -> dict:
    """Training samples/s and inference windows/s of ``recognizer`` on random windows.

    malloc is set as ``tools/train.py`` sets it, process-wide
    (:func:`~gm_plugins.utils.allocator.keep_freed_memory`).
    """
    from mmengine.optim import OptimWrapper

    from gm_plugins.utils.allocator import keep_freed_memory

    keep_freed_memory()

    classes = recognizer.cls_head.num_classes
    train_data = random_windows(recognizer.input_shapes, train_batch, classes, seed=0)
    test_data = random_windows(recognizer.input_shapes, test_batch, classes, seed=1)
    optim_wrapper = OptimWrapper(torch.optim.AdamW(recognizer.parameters(), lr=1e-4))
    recognizer.train()
    train = items_per_second(
        lambda: recognizer.train_step(train_data, optim_wrapper),
        train_batch, speed.steps, speed.warmup, speed.repeats,
    )  # fmt: skip
    recognizer.eval()
    with torch.no_grad():
        test = items_per_second(
            lambda: recognizer.test_step(test_data),
            test_batch, speed.steps, speed.warmup, speed.repeats,
        )  # fmt: skip
    return dict(train_samples_per_s=round(train, 4), inference_windows_per_s=round(test, 4))


def cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    return rs.processor()["name"]


# -- figures of one config -------------------------------------------------------------------


def measurement_key(cfg: Config, speed: SpeedSettings) -> dict:
    """What a config's figures depend on: its model, batch sizes and the timing settings."""
    key = dict(
        model=cfg.model.to_dict(),
        train_batch_size=cfg.train_dataloader.batch_size,
        test_batch_size=cfg.test_dataloader.batch_size,
        threads=speed.threads,
        warmup=speed.warmup,
        steps=speed.steps,
        repeats=speed.repeats,
    )
    return json.loads(json.dumps(key, sort_keys=True, default=str))  # as it reads back


def measure_config(cfg: Config, config: str, speed: SpeedSettings) -> dict:
    """Parameters, FLOPs per window and speeds of one config (``speed.threads`` torch threads)."""
    key = measurement_key(cfg, speed)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(speed.threads)
    try:
        recognizer = build_recognizer(cfg, config)
        flops, uncounted = count_flops(recognizer)
        parameters = sum(p.numel() for p in recognizer.parameters())
        rates = measure_speed(recognizer, key["train_batch_size"], key["test_batch_size"], speed)
    finally:
        torch.set_num_threads(threads)
    return dict(
        config=config,
        measured_with=key,
        input_shapes={s: list(shape) for s, shape in recognizer.input_shapes.items()},
        parameters=parameters,
        flops_per_window=flops,
        flops_uncounted_operators=uncounted,
        **rates,
        device=f"{cpu_name()}, torch {torch.__version__}, torch threads: {speed.threads}",
        seconds=round(time.perf_counter() - start, 1),
    )


def figures_file(work_dir: str | os.PathLike, config: str) -> Path:
    return Path(work_dir) / "figures" / f"{cv.config_name(config)}.json"


def load_or_measure(
    cfg: Config, config: str, work_dir: Path, speed: SpeedSettings
) -> tuple[dict, bool]:
    """The config's figures from ``work_dir/figures`` if measured with these settings, else
    measured now and saved; returns them and whether they were measured now."""
    path = figures_file(work_dir, config)
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("measured_with") == measurement_key(cfg, speed):
            return stored, False
        print(f"[{cv.config_name(config)}] {path} was measured with other settings: measuring "
              "again", flush=True)  # fmt: skip
    figures = measure_config(cfg, config, speed)
    write_json_atomic(path, figures)
    return figures, True


def measure_all(
    bench: BackboneBenchmark, configs: Mapping[str, Config], recorder: StoreRecorder | None = None
) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Every config's figures, measured or loaded (from the store too, with a ``recorder``);
    a config that fails is reported, not fatal."""
    figures, failures = {}, []
    for config, cfg in configs.items():
        name = cv.config_name(config)
        try:
            if recorder is not None:
                recorder.restore_figures(config, cfg)
            figures[name], measured = load_or_measure(cfg, config, bench.work_dir, bench.speed)
            if recorder is not None:
                recorder.keep_figures(config, figures[name], measured)
        except rs.RecordError:
            raise
        except Exception as error:  # one bad config must not stop the others
            failures.append((name, str(error)))
            print(f"[{name}] measuring FAILED: {error}", flush=True)
            continue
        f = figures[name]
        source = figures_file(bench.work_dir, config)
        how = f"measured in {f['seconds']:.0f} s" if measured else f"from {source}"
        print(f"[{name}] {f['parameters'] / 1e6:.2f} M parameters, "
              f"{f['flops_per_window'] / 1e9:.3f} GFLOPs/window, "
              f"{f['train_samples_per_s']:.1f} train samples/s, "
              f"{f['inference_windows_per_s']:.1f} inference windows/s ({how})",
              flush=True)  # fmt: skip
    return figures, failures


# -- accuracy --------------------------------------------------------------------------------


def accuracy_summary(results: Sequence[Mapping]) -> dict[str, float]:
    """Infant accuracy and MCC of finished folds: mean and sd over folds, pooled, 95 % CI.

    NaN everywhere without finished folds; the intervals are NaN without confusion matrices.
    """
    summary = dict(runs=len(results))
    stats = cv.summarise(results) if results else {}
    matrices = {}  # repeat -> summed matrix: one decision per infant and repeat
    for result in results:
        matrix = result["metrics"].get("subject/confusion_matrix")
        if matrix is not None:
            repeat = result.get("repeat", 0)
            matrices[repeat] = matrices.get(repeat, 0) + np.asarray(matrix, np.int64)
    pooled = np.sum(list(matrices.values()), axis=0) if matrices else None
    infants = max((int(m.sum()) for m in matrices.values()), default=0)
    intervals = (
        bootstrap_intervals(pooled, infants, BOOTSTRAP_RESAMPLES, CI_LEVEL, BOOTSTRAP_SEED)
        if infants
        else {}
    )
    for metric, pooled_value in (
        ("accuracy", accuracy_from_confusion),
        ("mcc", mcc_from_confusion),
    ):
        mean, sd = stats.get(metric, (math.nan, math.nan))
        low, high = intervals.get(metric, (math.nan, math.nan))
        summary.update({f"{metric}_mean": mean, f"{metric}_sd": sd})
        summary[f"{metric}_pooled"] = float(pooled_value(pooled)) if infants else math.nan
        summary.update({f"{metric}_ci_low": low, f"{metric}_ci_high": high})
    return summary


def fold_results(job: CrossValidation) -> dict[str, list[dict]]:
    """The finished folds' results of every config, by config name."""
    by_config: dict[str, list[dict]] = {}
    for run in cv.plan_runs(job.configs, job.folds, job.repeats):
        result = cv.read_result(job.work_dir, run)
        by_config.setdefault(run.name, [])
        if result is not None:
            by_config[run.name].append(result)
    return by_config


# -- the leaderboard -------------------------------------------------------------------------


def leaderboard_frame(
    backbones: Mapping[str, Mapping[str, str]],
    figures: Mapping[str, Mapping],
    results: Mapping[str, Sequence[Mapping]],
) -> pd.DataFrame:
    """One row per config (:data:`COLUMNS`), by infant accuracy; configs without finished folds
    keep their order after the others."""
    rows = []
    for name, streams in backbones.items():
        measured = figures.get(name, {})
        row = dict(config=name, rgb_backbone=streams["rgb"], flow_backbone=streams["flow"])
        row.update(accuracy_summary(results.get(name, [])))
        for key in ("parameters", "flops_per_window"):
            row[key] = measured.get(key, pd.NA)
        for key in ("train_samples_per_s", "inference_windows_per_s"):
            row[key] = measured.get(key, math.nan)
        rows.append(row)
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    frame = frame.astype({"parameters": "Int64", "flops_per_window": "Int64", "runs": "int64"})
    frame = frame.sort_values("accuracy_mean", ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def _interval(low: float, high: float) -> str:
    return "n/a" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"


def _number(value: object, scale: float, digits: int) -> str:
    return "n/a" if pd.isna(value) else f"{float(value) / scale:.{digits}f}"


def markdown_table(frame: pd.DataFrame, expected_runs: int) -> str:
    """The leaderboard as a Markdown table (rank, accuracy and MCC, cost, speed)."""
    rows = []
    for rank, row in enumerate(frame.itertuples(index=False), start=1):
        rows.append({
            "#": rank,
            "Config": row.config,
            "RGB backbone": row.rgb_backbone,
            "Flow backbone": row.flow_backbone,
            "Infant accuracy": cv.format_mean_sd((row.accuracy_mean, row.accuracy_sd)),
            "Accuracy 95 % CI": _interval(row.accuracy_ci_low, row.accuracy_ci_high),
            "MCC": cv.format_mean_sd((row.mcc_mean, row.mcc_sd)),
            "MCC 95 % CI": _interval(row.mcc_ci_low, row.mcc_ci_high),
            "Params (M)": _number(row.parameters, 1e6, 2),
            "GFLOPs/window": _number(row.flops_per_window, 1e9, 3),
            "Train samples/s": _number(row.train_samples_per_s, 1, 1),
            "Inference windows/s": _number(row.inference_windows_per_s, 1, 1),
            "Folds": f"{row.runs}/{expected_runs}",
        })  # fmt: skip
    return pd.DataFrame.from_records(rows).to_markdown(index=False, disable_numparse=True) + "\n"


def data_description(cfg: Config) -> str:
    """The training infants in words: their subjects.csv, how many, and whether the synthetic
    generator made them (its meta.json beside subjects.csv)."""
    table, ids, _ = cv.subject_table(cfg)
    meta = table.parent / "meta.json"
    synthetic = meta.is_file() and "generator_version" in json.loads(meta.read_text())
    kind = "synthetic infants (tools/data/make_synthetic_dataset.py)" if synthetic else "infants"
    return f"{len(ids)} {kind} of {table}"


def leaderboard_header(bench: BackboneBenchmark, data: str, figures: Mapping[str, Mapping]) -> str:
    synthetic = "synthetic infants" in data
    title = "# Backbone leaderboard" + (" (synthetic data)" if synthetic else "")
    speed = bench.speed
    device = next((f["device"] for f in figures.values()), "not measured")
    return (
        f"{title}\n\n"
        f"Data: {data}. Cross-validation: {bench.folds} folds by infant x {bench.repeats} "
        f"repeat(s), seed {bench.seed}, the same folds for every config (cv/folds/).\n\n"
        "Infant accuracy and MCC: mean ± sample sd over folds; 95 % CI: percentile bootstrap "
        f"over infants ({BOOTSTRAP_RESAMPLES} resamples of all folds' infant decisions).\n"
        "Parameters and GFLOPs: the whole recognizer, one window at the config's "
        "model.input_shapes (mmengine FlopAnalyzer: a multiply-add is one FLOP; element-wise "
        "operators and pooling uncounted).\n"
        f"Speed on {device}, random windows: training samples/s (forward, backward, AdamW step "
        "at the config's train batch size) and inference windows/s (its test batch size), "
        f"median of {speed.repeats} timings of {speed.steps} step(s) after {speed.warmup} "
        "warm-up step(s).\n\n"
    )


def plot_leaderboard(path: str | os.PathLike, frame: pd.DataFrame) -> Path | None:
    """Infant accuracy (pooled, 95 % CI bars) against inference windows/s, one labelled point
    per config; None (and no file) when no config has both."""
    from gm_plugins.utils.plotting import pyplot, save_figure

    shown = frame[frame["accuracy_pooled"].notna() & frame["inference_windows_per_s"].notna()]
    if shown.empty:
        Path(path).unlink(missing_ok=True)  # an old figure would contradict the table
        return None
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    middle = float(
        np.sqrt(shown.inference_windows_per_s.min() * shown.inference_windows_per_s.max())
    )
    for rank, row in shown.iterrows():
        low = max(0.0, row.accuracy_pooled - row.accuracy_ci_low)
        high = max(0.0, row.accuracy_ci_high - row.accuracy_pooled)
        point = (row.inference_windows_per_s, row.accuracy_pooled)
        axes.errorbar(*point, yerr=[[low], [high]], fmt="o", capsize=3)
        same = row.rgb_backbone == row.flow_backbone
        label = row.rgb_backbone if same else f"{row.rgb_backbone} / {row.flow_backbone}"
        right_half = row.inference_windows_per_s > middle  # labels point inwards, within the axes
        axes.annotate(
            f"{rank + 1}. {label}", point, xytext=(-6 if right_half else 6, 4),
            textcoords="offset points", ha="right" if right_half else "left", fontsize=7,
        )  # fmt: skip
    axes.set_xscale("log")
    axes.margins(x=0.1)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.xaxis.set_major_formatter(plain)
    axes.xaxis.set_minor_formatter(plain)
    axes.tick_params(axis="x", which="minor", labelsize=7)
    axes.set_ylim(-0.02, 1.02)
    chance = 1 / len(GM_CLASSES)
    axes.axhline(
        chance, color="grey", linestyle=":", linewidth=1, label="chance (balanced classes)"
    )
    axes.set_xlabel("inference windows/s (log scale)")
    axes.set_ylabel("infant accuracy, all folds pooled (95 % CI)")
    axes.set_title("Backbones: accuracy against speed (rank. RGB / flow backbone, one if the same)")
    axes.legend(loc="lower right", fontsize=7)
    return save_figure(figure, path)


def write_leaderboard(
    bench: BackboneBenchmark, configs: Mapping[str, Config], figures: Mapping[str, Mapping]
) -> str:
    """Write leaderboard.md, .csv and .png under the work dir; returns the Markdown."""
    job = bench.cross_validation()
    backbones = {cv.config_name(c): describe_backbones(cfg) for c, cfg in configs.items()}
    frame = leaderboard_frame(backbones, figures, fold_results(job))
    data = data_description(next(iter(configs.values())))
    expected = bench.folds * bench.repeats
    text = leaderboard_header(bench, data, figures) + markdown_table(frame, expected)
    failed = sorted(set(backbones) - set(figures))
    if failed:
        text += f"\nNot measured (failed, see the tool's output): {', '.join(failed)}\n"
    write_text_atomic(bench.work_dir / "leaderboard.md", text)
    csv_text = frame.to_csv(index=False, float_format="%.4f", na_rep="nan")
    write_text_atomic(bench.work_dir / "leaderboard.csv", csv_text)
    plot_leaderboard(bench.work_dir / "leaderboard.png", frame)
    return text


# -- the results store -----------------------------------------------------------------------

#: The experiment's folder in the store.
EXPERIMENT = "backbones"
#: The store's run name of a config's cost and speed (after the config's name).
FIGURES_RUN = "cost-and-speed"
PREDICTIONS_FILE = "test_infants.json"


def predictions_file(work_dir: str | os.PathLike, run: cv.FoldRun) -> Path:
    """Where a fold's test writes each infant's decision and probabilities."""
    return run.directory(work_dir) / PREDICTIONS_FILE


class PredictingFoldRunner(FoldRunner):
    """A fold runner whose test also writes each infant's decision (``test_infants.json``)."""

    def write_fold_config(self, run: cv.FoldRun) -> Path:
        cfg = copy.deepcopy(self.configs[run.config])
        cfg.merge_from_dict(cv.fold_overrides(cfg, self.folds_files[run.repeat], run))
        evaluator = cfg.get("test_evaluator")
        if isinstance(evaluator, Mapping) and evaluator.get("type") == "SubjectMetric":
            cfg.test_evaluator.out_file = str(predictions_file(self.job.work_dir, run))
        return write_text_atomic(run.config_file(self.job.work_dir), cfg.dump())


def _shown(config: str, root: str | os.PathLike) -> str:
    """A config path as a record names it: relative to the repository when inside it."""
    try:
        return str(Path(config).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(config)


class StoreRecorder:
    """The results store seen from the leaderboard: keys, records of figures and folds."""

    def __init__(
        self,
        bench: BackboneBenchmark,
        configs: Mapping[str, Config],
        folds_files: Mapping[int, Path],
    ) -> None:
        assert bench.store is not None
        self.bench, self.configs, self.folds_files = bench, configs, folds_files
        self.store = bench.store
        self.job = bench.cross_validation()
        self.finished: list[str] = []  # recorded by this invocation
        self.seconds_per_cost: list[float] = []
        self._keys: dict[tuple, rs.RunKey] = {}

    def _chains(self, config: str) -> tuple[str, ...]:
        chain = self.configs[config].get("preprocess_config")
        return (str(chain),) if chain else ()

    def _key(self, config: str, run: str, overrides: Mapping, seed: int | None) -> rs.RunKey:
        memo = (config, run, seed)
        if memo not in self._keys:
            chains = self._chains(config)
            self._keys[memo] = rs.RunKey(
                EXPERIMENT,
                run,
                _shown(config, self.bench.root),
                rs.config_sha256(config, overrides, chains, self.bench.root),
                # The cache may come from another machine: a chain model not here hashes None.
                rs.chain_checkpoints(chains, self.bench.root, missing_ok=True),
                seed,
            )
        return self._keys[memo]

    def fold_name(self, run: cv.FoldRun) -> str:
        return f"{run.name}/{run.label}"

    def fold_key(self, run: cv.FoldRun) -> rs.RunKey:
        """Config, overrides and the split (every fold of it: the same for all folds of a
        config, so their seconds estimate each other), the fold in the name, its seed."""
        split = json.loads(Path(self.folds_files[run.repeat]).read_text())
        overrides = dict(cfg_options=dict(self.bench.cfg_options), num_folds=run.num_folds,
                         split=split)  # fmt: skip
        return self._key(run.config, self.fold_name(run), overrides, self.job.fold_seed(run))

    def figures_key(self, config: str) -> rs.RunKey:
        overrides = dict(cfg_options=dict(self.bench.cfg_options),
                         speed=dataclasses.asdict(self.bench.speed))  # fmt: skip
        return self._key(config, f"{cv.config_name(config)}/{FIGURES_RUN}", overrides, None)

    # cost and speed

    def stored_figures(self, config: str, cfg: Config) -> dict | None:
        """The config's figures from a matching record, as load_or_measure keeps them."""
        found = self.store.lookup(self.figures_key(config))
        if found.status == "stale":
            print(f"[{cv.config_name(config)}] stored cost and speed are stale "
                  f"({'; '.join(found.why)})", flush=True)  # fmt: skip
        if found.status != "match":
            return None
        return dict(found.record["test"], measured_with=measurement_key(cfg, self.bench.speed))

    def restore_figures(self, config: str, cfg: Config) -> None:
        """Write the figures file from a matching record unless the work dir has them."""
        path = figures_file(self.bench.work_dir, config)
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("measured_with") == measurement_key(cfg, self.bench.speed):
                return
        figures = self.stored_figures(config, cfg)
        if figures is not None:
            write_json_atomic(path, figures)

    def keep_figures(self, config: str, figures: Mapping, measured: bool) -> None:
        """Record figures measured now (or found in the work dir without a matching record)."""
        key = self.figures_key(config)
        if not measured and self.store.lookup(key).status == "match":
            return
        test = {k: v for k, v in figures.items() if k != "measured_with"}
        record = rs.build_record(key, seconds=figures.get("seconds"), validation=None, test=test,
                                 infants=None, start_time=rs.utc_now() if measured else None,
                                 threads=self.bench.speed.threads,
                                 root=self.bench.root)  # fmt: skip
        self.store.write(record)

    # folds

    def _marker(self, run: cv.FoldRun) -> Path:
        return run.directory(self.job.work_dir) / "store_key.json"

    def key_fields(self, run: cv.FoldRun) -> dict:
        return rs.rounded(dataclasses.asdict(self.fold_key(run)))

    def settle(self, run: cv.FoldRun) -> bool:
        """Whether the fold needs no training: a matching record (written into the work dir
        when missing there) or a result of its current key (recorded now). A stale record is
        reported; a fold dir started under another key is set aside."""
        key, work_dir = self.fold_key(run), self.job.work_dir
        found = self.store.lookup(key)
        path = self.store.path(EXPERIMENT, key.run)
        result = cv.read_result(work_dir, run)
        if found.status == "match":
            if result is None:
                self.materialise(run, found.record)
            elif result.get("checkpoint"):  # finish the pruning a killed run may have left
                prune_checkpoints(run.directory(work_dir), Path(result["checkpoint"]),
                                  self.job.keep_checkpoints)  # fmt: skip
            return True
        marker = self._marker(run)
        started = json.loads(marker.read_text()) if marker.is_file() else None
        ours = started == self.key_fields(run)
        if found.status == "stale":
            print(f"[{run.name}] {run.label}: the stored record {path} is stale "
                  f"({'; '.join(found.why)}): running it again", flush=True)  # fmt: skip
        directory = run.directory(work_dir)
        if directory.exists() and not ours and (found.status == "stale" or started):
            aside = rs.set_aside(directory)
            print(f"[{run.name}] {run.label}: {directory} ran under another key: moved to "
                  f"{aside}", flush=True)  # fmt: skip
            result = None
        if result is not None:  # finished before it was recorded (or before the store)
            self.record(run, result, None, None)
            return True
        return False

    def record(
        self, run: cv.FoldRun, result: Mapping, start_time: str | None, threads: int | None
    ) -> Path:
        """Record a finished fold (its result and, if written, each infant's decision)."""
        from gm_plugins.experiments.benchmark_runs import validation_figures

        directory = run.directory(self.job.work_dir)
        try:
            validation = validation_figures(directory)
        except (ValueError, OSError):
            validation = None
        predictions = predictions_file(self.job.work_dir, run)
        record = rs.build_record(
            self.fold_key(run),
            seconds=result.get("seconds"),
            validation=validation,
            test=result["metrics"],
            infants=rs.infants_from_predictions(predictions) if predictions.is_file() else None,
            start_time=start_time,
            threads=threads,
            root=self.bench.root,
            extra=dict(repeat=run.repeat, fold=run.fold, val_fold=run.val_fold),
        )
        path = self.store.write(record)
        self.finished.append(self.fold_name(run))
        return path

    def materialise(self, run: cv.FoldRun, record: Mapping) -> None:
        """Write the fold's predictions and ``result.json`` from its record."""
        work_dir = self.job.work_dir
        if record.get("test_infants"):
            document = rs.predictions_document(record["test_infants"], record["test"])
            write_json_atomic(predictions_file(work_dir, run), document)
        result = dict(
            config=run.config, name=run.name, repeat=run.repeat, fold=run.fold,
            test_fold=run.fold, val_fold=run.val_fold, seed=record["seed"],
            folds_file=str(self.folds_files[run.repeat]), checkpoint=None,
            seconds=record["seconds"], metrics=record["test"],
            results_record=str(self.store.path(EXPERIMENT, self.fold_name(run))),
        )  # fmt: skip
        write_json_atomic(run.result_file(work_dir), result)

    def materialise_matching(self, run: cv.FoldRun) -> bool:
        found = self.store.lookup(self.fold_key(run))
        if found.status == "stale":
            print(f"[{run.name}] {run.label}: the stored record is stale "
                  f"({'; '.join(found.why)}): left out", flush=True)  # fmt: skip
        if found.status != "match":
            return False
        self.materialise(run, found.record)
        return True

    def estimator(
        self, runs: Sequence[cv.FoldRun], todo: Sequence[cv.FoldRun], figures: Mapping
    ) -> Callable[[cv.FoldRun], float | None]:
        """Expected seconds of a fold: the median of stored folds of its config, else its cost
        (1 / training samples per second) times the seconds per cost of the folds stored or
        finished so far."""

        def cost(run: cv.FoldRun) -> float:
            speed = figures.get(run.name, {}).get("train_samples_per_s")
            return 1.0 / speed if speed else 1.0

        for run in runs:
            record = self.store.read(EXPERIMENT, self.fold_name(run))
            if record is not None and record.get("seconds"):
                self.seconds_per_cost.append(record["seconds"] / cost(run))
        stored = self.store.seconds_by_config()
        measured = {run.config: stored.get(self.fold_key(run).config_sha256, []) for run in todo}
        self._cost = cost
        return lambda run: rs.estimate_seconds(
            measured.get(run.config, []), cost(run), self.seconds_per_cost
        )


def execute_recorded(
    job: CrossValidation,
    recorder: StoreRecorder,
    configs: Mapping[str, Config],
    figures: Mapping[str, Mapping],
    budget: rs.Budget | None,
    train: bool = True,
) -> list[tuple[cv.FoldRun, str]]:
    """Run the folds without a matching record (``jobs`` at a time, those that fit the
    ``budget``), recording each as it finishes; a failed fold is reported, not fatal."""
    runs = cv.plan_runs(job.configs, job.folds, job.repeats)
    todo = [run for run in runs if not recorder.settle(run)]
    done = len(runs) - len(todo)
    print(f"{len(runs)} fold runs, {done} already finished, {len(todo) if train else 0} to run",
          flush=True)  # fmt: skip
    if not train or not todo:
        return []
    runner = PredictingFoldRunner(job, configs, recorder.folds_files)
    estimate = recorder.estimator(runs, todo, figures)

    def next_run(left: Sequence[cv.FoldRun]) -> cv.FoldRun | None:
        return next((r for r in left if budget is None or budget.fits(estimate(r))), None)

    def on_start(run: cv.FoldRun) -> str:
        write_json_atomic(recorder._marker(run), recorder.key_fields(run))
        return rs.utc_now()

    def on_finish(run: cv.FoldRun, result: dict, started: str) -> str:
        path = recorder.record(run, result, started, runner.threads)
        recorder.seconds_per_cost.append(result["seconds"] / recorder._cost(run))
        return f"; recorded in {path}"

    failures = run_folds(job, runner, todo, len(runs), next_run, on_start, on_finish)
    if todo and budget is not None:
        budget.leave_out(recorder.fold_name(run) for run in todo)
    return failures


def report_from_store(bench: BackboneBenchmark, configs: Mapping[str, Config]) -> int:
    """The leaderboard from the store's records alone (the folds' files go to a temporary
    folder; the split is made again from the data's subjects.csv); partial, naming what is
    missing, while records are missing."""
    with tempfile.TemporaryDirectory(prefix="gm-leaderboard-") as scratch:
        shadow = dataclasses.replace(bench, work_dir=Path(scratch))
        job = shadow.cross_validation()
        recorder = StoreRecorder(shadow, configs, make_folds(job, configs))
        figures, missing = {}, []
        for config, cfg in configs.items():
            found = recorder.stored_figures(config, cfg)
            if found is None:
                missing.append(f"{cv.config_name(config)}/{FIGURES_RUN}")
            else:
                figures[cv.config_name(config)] = found
        for run in cv.plan_runs(job.configs, job.folds, job.repeats):
            if not recorder.materialise_matching(run):
                missing.append(recorder.fold_name(run))
        text = write_leaderboard(shadow, configs, figures)
        if missing:
            text = text.replace("# Backbone leaderboard", "# Backbone leaderboard (partial)", 1)
            text += (f"\n**Partial**: {len(missing)} record(s) missing from the results store "
                     f"({bench.store.root}): {', '.join(missing)}\n")  # fmt: skip
            write_text_atomic(shadow.work_dir / "leaderboard.md", text)
        bench.work_dir.mkdir(parents=True, exist_ok=True)
        for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.png"):
            made = shadow.work_dir / name
            if made.is_file():
                shutil.copyfile(made, bench.work_dir / name)
            else:
                (bench.work_dir / name).unlink(missing_ok=True)
    print(text)
    print(f"leaderboard from {bench.store.root / EXPERIMENT}: {bench.work_dir / 'leaderboard.md'}")
    if missing:
        print(f"{len(missing)} record(s) missing: {', '.join(missing)}")
    return 0


def verify_from_store(
    bench: BackboneBenchmark, configs: Mapping[str, Config], folds_files: Mapping[int, Path]
) -> int:
    """Rerun ``bench.verify`` stored folds (drawn with ``bench.verify_seed``) in temporary work
    dirs and compare each infant with the record (never overwritten); 1 when a fold changed
    more than ``bench.verify_tolerance`` decisions or failed."""
    job = bench.cross_validation()
    recorder = StoreRecorder(bench, configs, folds_files)
    stored = {}
    for run in cv.plan_runs(job.configs, job.folds, job.repeats):
        found = bench.store.lookup(recorder.fold_key(run))
        if found.status == "match" and found.record.get("test_infants"):
            stored[recorder.fold_name(run)] = (run, found.record)
    names = rs.choose_for_verify(stored, bench.verify, bench.verify_seed)
    print(f"verifying {len(names)} of {len(stored)} stored folds (seed {bench.verify_seed}, "
          f"tolerance {bench.verify_tolerance} changed decision(s)): {', '.join(names)}",
          flush=True)  # fmt: skip
    worst = 0
    for name in names:
        run, record = stored[name]
        with tempfile.TemporaryDirectory(prefix="gm-verify-") as scratch:
            again = dataclasses.replace(job, work_dir=Path(scratch) / "cv", jobs=1)
            runner = PredictingFoldRunner(again, configs, make_folds(again, configs))
            runner.threads = record.get("threads") or runner.threads
            try:
                runner(run)
            except Exception as error:
                print(f"[verify] {name}: FAILED ({error})", flush=True)
                worst = 1
                continue
            infants = rs.infants_from_predictions(predictions_file(again.work_dir, run))
        comparison = rs.compare_infants(record["test_infants"], infants)
        print(rs.verify_line(name, comparison, bench.verify_tolerance), flush=True)
        if comparison["decisions_changed"] > bench.verify_tolerance:
            worst = 1
    return worst


def benchmark_backbones(bench: BackboneBenchmark) -> int:
    """Check, measure, cross-validate (unless ``skip_cv``), write the leaderboard.

    With ``bench.store``: matching records stand in for measurements and folds, finished ones
    are recorded, ``budget_minutes`` bounds the folds launched; ``report`` and ``verify``
    read the store instead (see :class:`BackboneBenchmark`).

    Returns the exit code: 0 done, 1 a config could not be measured or some folds failed (or
    a verified fold changed), 2 bad input (a missing config, configs of different infants,
    mismatched folds, an untrusted record), refused before anything is measured.
    """
    budget = rs.Budget(bench.budget_minutes) if bench.budget_minutes is not None else None
    bench.configs = [str(Path(c)) for c in (bench.configs or default_configs(bench.root))]
    if bench.keep_checkpoints not in KEEP_CHOICES:
        print(f"error: keep_checkpoints must be one of {KEEP_CHOICES}", file=sys.stderr)
        return 2
    if (bench.report or bench.verify or budget) and bench.store is None:
        print("error: report, verify and budget_minutes need a results store", file=sys.stderr)
        return 2
    job = bench.cross_validation()
    try:
        cv.plan_runs(bench.configs, bench.folds, bench.repeats)  # distinct names
        configs = {c: load_config(c, bench.cfg_options) for c in bench.configs}
        if bench.report:
            return report_from_store(bench, configs)
        bench.work_dir.mkdir(parents=True, exist_ok=True)
        folds_files = make_folds(job, configs)  # the checks, before an hour of training
        if bench.verify:
            return verify_from_store(bench, configs, folds_files)
    except (ValueError, FileNotFoundError) as error:  # RecordError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    remove_stale_temporaries(bench.work_dir)
    recorder = None if bench.store is None else StoreRecorder(bench, configs, folds_files)
    print(f"Measuring {len(configs)} configs ({bench.speed.threads} torch threads)", flush=True)
    try:
        figures, failures = measure_all(bench, configs, recorder)
        if recorder is None:
            code = cross_validate(job, report_only=bench.skip_cv)
        else:
            fold_failures = execute_recorded(
                job, recorder, configs, figures, budget, train=not bench.skip_cv
            )
            print(cv.write_report(job.work_dir, cv.plan_runs(job.configs, job.folds,
                  job.repeats), job.folds, job.repeats, job.seed))  # fmt: skip
            print(f"report: {job.work_dir / 'report.md'} (also report.csv, comparison.png)")
            for run, error in fold_failures:
                print(f"FAILED {run.name} {run.label}: {error}", file=sys.stderr)
            code = 1 if fold_failures else 0
    except rs.RecordError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(write_leaderboard(bench, configs, figures))
    print(f"leaderboard: {bench.work_dir / 'leaderboard.md'} (also leaderboard.csv, .png)")
    for name, error in failures:
        print(f"FAILED measuring {name}: {error}", file=sys.stderr)
    if budget is not None and budget.left_out:
        done = recorder.finished if recorder is not None else []
        print(f"\nStopped within the budget of {budget.seconds / 60:g} min. Recorded by this "
              f"invocation: {len(done)} fold(s){': ' if done else ''}{', '.join(done)}.\n"
              f"Remaining: {', '.join(budget.left_out)}. Commit results/ and run the same "
              "command again (here or on another machine) to go on.", flush=True)  # fmt: skip
    return max(code, 1 if failures else 0)
