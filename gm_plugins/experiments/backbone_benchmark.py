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

This module is the driver; the parts are :mod:`~gm_plugins.experiments.backbone_cost`
(parameters, FLOPs, speed, the figures files), :mod:`~gm_plugins.experiments.backbone_leaderboard`
(accuracy, the table and the figure) and :mod:`~gm_plugins.experiments.backbone_records` (the
results store: records, budget, report and verify).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mmengine.config import Config

from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.experiments import results_store as rs
from gm_plugins.experiments.backbone_cost import SpeedSettings, figures_file, load_or_measure
from gm_plugins.experiments.backbone_leaderboard import write_leaderboard
from gm_plugins.experiments.backbone_records import (
    StoreRecorder,
    execute_recorded,
    report_from_store,
    verify_from_store,
)
from gm_plugins.experiments.cross_validation import (
    KEEP_CHOICES,
    CrossValidation,
    cross_validate,
    make_folds,
)
from gm_plugins.utils.config import load_config
from gm_plugins.utils.io import remove_stale_temporaries
from gm_plugins.utils.locking import WorkDirInUseError, lock_work_dir
from gm_plugins.utils.processes import stop_children_on_signals

#: The demo config; the default list is it and every swap of its backbones (both relative to
#: the repository, :attr:`BackboneBenchmark.root`).
DEMO_CONFIG = "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"
BACKBONE_CONFIGS = "configs/backbones"


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


def benchmark_backbones(bench: BackboneBenchmark) -> int:
    """Check, measure, cross-validate (unless ``skip_cv``), write the leaderboard.

    With ``bench.store``: matching records stand in for measurements and folds, finished ones
    are recorded, ``budget_minutes`` bounds the folds launched; ``report`` and ``verify``
    read the store instead (see :class:`BackboneBenchmark`).

    The driver holds its work dir and ``cv/`` (:func:`~gm_plugins.utils.locking.lock_work_dir`)
    and its training children end with it.

    Returns the exit code: 0 done, 1 a config could not be measured or some folds failed (or
    a verified fold changed), 2 bad input (a missing config, configs of different infants,
    mismatched folds, an untrusted record) or a work dir held by another driver, refused before
    anything is measured.
    """
    bench.configs = [str(Path(c)) for c in (bench.configs or default_configs(bench.root))]
    missing = [c for c in bench.configs if not Path(c).is_file()]
    if missing:  # refused before a folder is made or locked
        try:
            load_config(missing[0], bench.cfg_options)
        except (ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as held:
        # One driver per folder: the leaderboard's and (unless it only reports from the
        # store, which writes nothing there) its cross-validation's.
        folders = [bench.work_dir] + ([] if bench.report else [bench.cross_validation().work_dir])
        try:
            for folder in folders:
                held.enter_context(lock_work_dir(folder))
        except WorkDirInUseError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        stop_children_on_signals()  # the folds' children run from worker threads
        return _benchmark_backbones(bench)


def _benchmark_backbones(bench: BackboneBenchmark) -> int:
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
