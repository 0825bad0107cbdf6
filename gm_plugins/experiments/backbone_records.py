"""The backbone leaderboard's results-store records: each config's cost and speed and each
finished fold (with each test infant's decision), the folds launched within a budget, the
leaderboard rebuilt from the records alone and stored folds rerun to verify them
(:mod:`gm_plugins.experiments.backbone_benchmark`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmengine.config import Config

from gm_plugins.evaluation import cross_validation as cv
from gm_plugins.experiments import results_store as rs
from gm_plugins.experiments.backbone_cost import figures_file, measurement_key
from gm_plugins.experiments.backbone_leaderboard import predictions_file, write_leaderboard
from gm_plugins.experiments.cross_validation import (
    CrossValidation,
    FoldRunner,
    make_folds,
    prune_checkpoints,
    run_folds,
)
from gm_plugins.utils.io import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from gm_plugins.experiments.backbone_benchmark import BackboneBenchmark


# -- the results store -----------------------------------------------------------------------

#: The experiment's folder in the store.
EXPERIMENT = "backbones"
#: The store's run name of a config's cost and speed (after the config's name).
FIGURES_RUN = "cost-and-speed"


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
            threads=threads if threads is not None else result.get("threads"),
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
        folds = []
        for run in cv.plan_runs(job.configs, job.folds, job.repeats):
            if recorder.materialise_matching(run):
                folds.append(recorder.store.read(EXPERIMENT, recorder.fold_name(run)))
            else:
                missing.append(recorder.fold_name(run))
        text = write_leaderboard(shadow, configs, figures)
        text += "\n" + rs.provenance_text(rs.provenance(folds), unit="folds") + "\n"
        verification = rs.verification_summary(bench.store.verifications(EXPERIMENT), folds)
        text += "\n" + rs.verification_text(verification, unit="folds") + "\n"
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
                bench.store.log_verification(rs.verification_entry(
                    EXPERIMENT, name, record, None, bench.verify_tolerance, f"failed: {error}",
                    bench.root))  # fmt: skip
                continue
            infants = rs.infants_from_predictions(predictions_file(again.work_dir, run))
        comparison = rs.compare_infants(record["test_infants"], infants)
        print(rs.verify_line(name, comparison, bench.verify_tolerance), flush=True)
        bench.store.log_verification(
            rs.verification_entry(
                EXPERIMENT, name, record, comparison, bench.verify_tolerance, root=bench.root
            )
        )
        if comparison["decisions_changed"] > bench.verify_tolerance:
            worst = 1
    return worst
