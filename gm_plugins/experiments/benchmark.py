"""The synthetic benchmark behind ``make table1`` and ``make confounding``.

One definition (:data:`BENCHMARK`) names everything: datasets made with fixed seeds and split by
infant once (infants that train the preprocessing models, infants that train classifiers,
validation infants that pick checkpoints and settings, 300 test infants that are only tested),
the evaluation-grade preprocessing chain, the methods with their seeds and the RGB-stream
variants compared on validation infants (from scratch, frozen random, started from the pose
model's backbone, fine-tuned or kept).

``table1`` runs every method (each run is ``tools/train.py CONFIG --seed S --test-after``, its
data named on the command line), picks each method's RGB variant by validation accuracy on the
choosing seed, runs the chosen variant on its reported seeds (never the choosing one), and
reports infant-level accuracy and MCC as mean ± sd over seeds, a bootstrap 95 % CI (over seeds,
then test infants, for rows with several seeds), and paired comparisons with the paper's
two-stream model; the paper's ordering "holds" only where every paired CI excludes 0.
``confounding`` trains the chosen two-stream model (3 seeds per arm) on infants whose
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
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from gm_plugins.experiments import results_store as rs
from gm_plugins.experiments.benchmark_definition import (
    BENCHMARK,
    CHOOSING_SEED,
    UNPRETRAINED_VARIANTS,
    Benchmark,
    DataSet,
)
from gm_plugins.experiments.benchmark_planner import Planner
from gm_plugins.experiments.benchmark_report import (
    control_figures,
    design_notes,
    ordering_statement,
    ordering_verdict,
    pretraining_section,
    results_table,
    summarise,
    variant_table,
    write_figure,
)
from gm_plugins.experiments.benchmark_runs import (
    Recorder,
    Run,
    format_duration,
    read_record,
    run_all,
)
from gm_plugins.experiments.shipped import MAKE_DATASET, PREPROCESS_VIDEOS
from gm_plugins.utils.io import write_json_atomic, write_text_atomic
from gm_plugins.utils.locking import WorkDirInUseError, lock_work_dir
from gm_plugins.utils.processes import (
    CommandError,
    module_command,
    run_command,
)

#: The method whose streams can start from no pretrained weights only (the pretraining control
#: compares the reference with it).
FLOW_ONLY = "temporal-only"


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
        self.from_store = False  # True while a report is built from the records alone

    def _timed(self, name: str, command: list[str]) -> None:
        begin = time.perf_counter()
        run_command(command, name, cwd=self.root, announce="\n")
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - begin

    def prepare(self, caches: Sequence[tuple[str, str]]) -> None:
        """Datasets, preprocessing models (the zoo's, else trained once per machine), caches."""
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
        chosen_runs = {m.key: planner.reported_runs(m) for m in self.bench.methods}
        failed = self._run_all(
            [r for runs in chosen_runs.values() for r in runs], "chosen variants' reported seeds"
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
            rows = self.planner.confounding_rows()
            failed = self._run_all([r for runs in rows.values() for r in runs], "confounding")
        if failed:
            return self._failed(failed, "confounding")
        if self._out_of_budget("confounding", "the report"):
            return 0
        self.report_confounding(rows)
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
        control = self._pretraining_control(chosen_runs)
        control_runs = list(control.values())
        all_runs = planner.study_runs() + [r for runs in chosen_runs.values() for r in runs]
        all_runs = [r for r in all_runs + control_runs if r.done()]
        all_runs = list({r.record: r for r in all_runs}.values())
        timings = self._wall_time("table1", all_runs)
        provenance, verification = self._store_figures(all_runs)
        others = [key for key in bench.ordering if key in titles]
        out = self.work_dir / "table1"
        figure = write_figure(
            out / "table1.png",
            summary,
            titles,
            bench.reference,
            "Table 1 on the synthetic benchmark (test infants)" + (" (partial)" if missing else ""),
        )
        max_epochs = {
            m.key: _max_epochs(m.configs[chosen[m.key]], bench.extra_options, self.root)
            for m in bench.methods
            if m.key in chosen
        }
        control_text, control_summary = self._pretraining_text(control, chosen_runs, chosen)
        text = "\n\n".join(
            [
                "# Table 1 on the synthetic benchmark" + (" (partial)" if missing else ""),
                *_partial_note(missing),
                f"Test infants: {next(iter(summary.values()))['num_infants']} "
                f"({bench.test}); bootstrap: {bench.resamples} resamples.",
                results_table(summary, titles, bench.reference, _sees(bench), max_epochs),
                design_notes(bench, max_epochs.get(bench.reference)).rstrip(),
                "## The paper's ordering",
                ordering_statement(summary, bench.reference, others, titles),
                *control_text,
                "## RGB stream variants (chosen on the validation infants)",
                variant_table(study, chosen, test, titles),
                *self._compute_text(timings, provenance, verification),
                f"![Table 1]({figure.name})",
            ]
        )
        path = write_text_atomic(out / "report.md", text + "\n")
        result = dict(
            summary=summary,
            chosen=chosen,
            study=study,
            ordering=ordering_verdict(summary, bench.reference, others),
            pretraining_control=control_summary,
            provenance=provenance,
            verification=verification,
        )
        if missing:
            result["missing"] = list(missing)
        write_json_atomic(out / "summary.json", result)
        print("\n" + text, flush=True)
        return path

    def _store_figures(self, runs: Sequence[Run]) -> tuple[dict | None, dict | None]:
        """What the stored records of ``runs`` cost and where they ran, and how their logged
        ``--verify`` reruns agreed, from one read of the records ((None, None) without a store)."""
        if self.recorder is None:
            return None, None
        store = self.recorder.store
        read = [store.read(run.experiment, run.name) for run in runs]
        records = [record for record in read if record is not None]
        experiments = sorted({run.experiment for run in runs})
        entries = [entry for name in experiments for entry in store.verifications(name)]
        return rs.provenance(records), rs.verification_summary(entries, records)

    def _compute_text(
        self, timings: Mapping, provenance: Mapping | None, verification: Mapping | None = None
    ) -> list[str]:
        """The report's compute: this machine's (runs and preparation, unless the report comes
        from the store alone) and, with a store, what the runs' records say (``provenance``)
        and how their reruns agreed (``verification``)."""
        lines = []
        if not self.from_store:
            lines.append(f"This machine's compute: {format_duration(timings['total_seconds'])} "
                         "(runs and preparation; see timings.json).")  # fmt: skip
        if provenance is not None:
            lines.append(rs.provenance_text(provenance))
        if verification is not None:
            lines.append(rs.verification_text(verification))
        return lines

    def _pretraining_control(self, rows: Mapping[str, Sequence[Run]]) -> dict[str, Run]:
        """The reference's finished control runs without pretrained weights (see
        :meth:`Planner.pretraining_control`), where only temporal has rows to compare with."""
        bench = self.bench
        if FLOW_ONLY not in rows or bench.reference not in {m.key for m in bench.methods}:
            return {}
        try:
            control = self.planner.pretraining_control(bench.method(bench.reference))
        except FileNotFoundError:  # a partial report: the variant study is not complete
            return {}
        return {variant: run for variant, run in control.items() if run.done()}

    def _pretraining_text(
        self, control: Mapping[str, Run], rows: Mapping[str, Sequence[Run]], chosen: Mapping
    ) -> tuple[list[str], dict[str, dict]]:
        """The report's section on equal pretraining (fusion against only temporal), and its
        figures."""
        bench = self.bench
        titles = {m.key: m.title for m in bench.methods}
        variant = chosen.get(bench.reference)
        if FLOW_ONLY not in rows or variant is None:
            return [], {}
        head = "## Same pretraining: fusion against only temporal"
        reference, flow = titles[bench.reference], titles[FLOW_ONLY]
        if variant in UNPRETRAINED_VARIANTS:
            return [
                head,
                f"The chosen variant of {reference} ({variant}) starts from no trained weights, "
                f"as {flow} does: their comparison above compares equal pretraining.",
            ], {}
        figures = control_figures(control, rows[FLOW_ONLY], bench.resamples) if control else {}
        text = [
            head,
            f"The chosen variant of {reference} ({variant}) starts from the pose model's "
            f"backbone, which {flow} cannot use, so its lead over {flow} may reflect that "
            f"pretraining. Here {reference} with an RGB stream from no trained weights, on seed "
            f"{CHOOSING_SEED} (these variants lost the validation choice, so their test figures "
            "carry none of its optimism; one seed each, so the interval is over infants and "
            f"{flow}'s seeds only):",
        ]
        if figures:
            text.append(pretraining_section(figures, reference, flow))
        else:
            text.append("(not run yet)")
        return text, figures

    def report_confounding(
        self, rows: Mapping[str, Sequence[Run]], missing: Sequence[str] = ()
    ) -> Path | None:
        """The confounding experiment of the finished runs of ``rows`` (arm key -> its runs)."""
        bench = self.bench
        titles = {arm.key: arm.title for arm in bench.arms}
        runs = [run for arm_runs in rows.values() for run in arm_runs]
        rows = {key: [r for r in arm_runs if r.done()] for key, arm_runs in rows.items()}
        rows = {key: arm_runs for key, arm_runs in rows.items() if arm_runs}
        if not rows:
            print(f"\nconfounding: no finished arms yet; missing: {', '.join(missing)}")
            return None
        reference = bench.arms[0].key
        others = [arm.key for arm in bench.arms[1:]]
        summary = summarise(rows, reference, bench.resamples)
        method = bench.method(bench.confounding_method)
        try:
            variant, _ = self.planner.chosen_variant(method)
            epochs = _max_epochs(method.configs[variant], bench.extra_options, self.root)
        except FileNotFoundError:  # a partial report: the variant study is not complete
            epochs = None
        done = [r for r in runs if r.done()]
        timings = self._wall_time("confounding", done)
        provenance, verification = self._store_figures(done)
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
                f"of class); seeds {', '.join(map(str, bench.arm_seed_list))} of every arm; "
                f"bootstrap: {bench.resamples} resamples; comparisons are paired by infant and "
                "seed with the first arm.",
                results_table(
                    summary,
                    titles,
                    reference,
                    {arm.key: method.sees for arm in bench.arms},
                    {arm.key: epochs for arm in bench.arms},
                ),
                "## The paper's claim",
                ordering_statement(
                    summary,
                    reference,
                    others,
                    titles,
                    claim="The paper's claim (the model trained on confounded infants does best "
                    "with both preprocessing steps)",
                ),
                *self._compute_text(timings, provenance, verification),
                f"![confounding]({figure.name})",
            ]
        )
        path = write_text_atomic(out / "report.md", text + "\n")
        result = dict(
            summary=summary,
            claim=ordering_verdict(summary, reference, others),
            provenance=provenance,
            verification=verification,
        )
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
                    runs = planner.reported_runs(method)
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
                arm_rows = planner.confounding_rows()
            except FileNotFoundError:
                return {}, [*missing, *(f"confounding/{arm.key}" for arm in bench.arms)]
            for key, runs in arm_rows.items():
                for run in runs:
                    if not recorder.materialise_matching(run):
                        missing.append(run.name)
                rows[key] = runs
        return rows, list(dict.fromkeys(missing))

    def report_from_store(self, name: str) -> int:
        """Every table and figure of ``name`` from the store's records alone (the runs'
        files are written to a temporary folder); partial, with the missing runs named, while
        runs are missing."""
        with tempfile.TemporaryDirectory(prefix="gm-report-") as scratch:
            self.planner = Planner(self.bench, Path(scratch))
            self.from_store = True
            rows, missing = self._stored_plan(name)
            if missing:
                print(f"\n{name}: {len(missing)} run(s) missing from the results store "
                      f"({self.recorder.store.root}): {', '.join(missing)}")  # fmt: skip
            if name == "table1":
                self.report_table1(rows, missing)
            elif rows:
                self.report_confounding(rows, missing)
            else:
                print(f"\nconfounding: nothing to report yet; missing: {', '.join(missing)}")
            self.planner = Planner(self.bench, self.work_dir)
            self.from_store = False
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
            stored.update({r.name: r for runs in rows.values() for r in runs if r.done()})
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
                    self.recorder.store.log_verification(rs.verification_entry(
                        run.experiment, run.name, record, None, tolerance, "the rerun failed",
                        self.root))  # fmt: skip
                    continue
                infants = rs.infants_from_predictions(again.predictions)
            comparison = rs.compare_infants(record["test_infants"], infants)
            print(rs.verify_line(run.name, comparison, tolerance), flush=True)
            self.recorder.store.log_verification(
                rs.verification_entry(
                    run.experiment, run.name, record, comparison, tolerance, root=self.root
                )
            )
            if comparison["decisions_changed"] > tolerance:
                worst = 1
        return worst


def _sees(bench: Benchmark) -> dict[str, str]:
    return {method.key: method.sees for method in bench.methods}


def _max_epochs(config: str, options: Sequence[str], root: Path) -> int | None:
    """The training epochs of ``config`` with ``options`` (None where it names none)."""
    for option in reversed(options):
        if option.startswith("train_cfg.max_epochs="):
            return int(option.split("=", 1)[1])
    from mmengine.config import Config

    try:
        cfg = Config.fromfile(str(root / config))
    except Exception:  # a config the report cannot read: no cap shown, nothing else lost
        return None
    epochs = cfg.get("train_cfg", {}).get("max_epochs")
    return int(epochs) if epochs else None


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
    if not report:  # a report only reads; training or verifying needs the folder alone
        try:
            lock = lock_work_dir(work_dir)  # noqa: F841  (held while this process runs)
        except WorkDirInUseError as error:
            print(f"\n{name}: {error}", flush=True)
            return 2
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
    print(
        f"\n{name}: this invocation took {format_duration(time.perf_counter() - begin)}", flush=True
    )
    return code
