"""The benchmark's protocol: variants chosen on validation figures only, rows reported on seeds
that did not choose, intervals over seeds and infants, and an ordering that "holds" only where
every paired interval excludes 0. Fake run records stand in for training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gm_plugins.experiments import benchmark as bm
from gm_plugins.experiments import benchmark_definition as bd
from gm_plugins.experiments import benchmark_planner as bp
from gm_plugins.experiments import benchmark_report as report
from gm_plugins.experiments.benchmark_runs import Run

INFANTS = 30
VARIANTS = ("scratch", "frozen-random", "pose-pretrained")
#: Validation and test accuracies of the choosing seed's runs: the rankings disagree.
VALIDATION = {"scratch": 0.60, "frozen-random": 0.75, "pose-pretrained": 0.90}
TEST = {"scratch": 0.90, "frozen-random": 0.80, "pose-pretrained": 0.50}


def _bench(tmp_path: Path) -> bd.Benchmark:
    configs = tmp_path / "configs"
    configs.mkdir()

    def family(name: str) -> dict[str, str]:
        for variant in VARIANTS:
            (configs / f"{name}_{variant}.py").write_text("model = dict(type='Fake')\n")
        return {v: str(configs / f"{name}_{v}.py") for v in VARIANTS}

    (configs / "temporal.py").write_text("model = dict(type='Fake')\n")
    return bd.Benchmark(
        datasets=(),
        chains={"cache": "chain.py"},
        train="d/train", val="d/val", test="d/test", cache="cache",
        methods=(
            bd.Method("two-stream", "two-stream", family("two"), seeds=3),
            bd.Method("temporal-only", "only temporal", {"": str(configs / "temporal.py")},
                      seeds=3),
            bd.Method("late-fusion", "late fusion", family("late"), follows="two-stream"),
        ),
        reference="two-stream",
        confound_train="d/ctrain", confound_val="d/cval",
        arms=(bd.Arm("both", "both", "cache"),),
        confounding_method="two-stream",
        ordering=("temporal-only",),
        resamples=300,
    )  # fmt: skip


def _finish(run: Run, val_accuracy: float, test_accuracy: float) -> None:
    """A finished run's files: right on the first round(test_accuracy * N) infants."""
    labels = np.arange(INFANTS) % 3
    right = round(test_accuracy * INFANTS)
    subjects = [
        dict(subject_id=f"s{k:02d}", label=int(label),
             predicted=int(label if k < right else (label + 1) % 3))
        for k, label in enumerate(labels)
    ]  # fmt: skip
    run.work_dir.mkdir(parents=True, exist_ok=True)
    run.predictions.write_text(json.dumps(dict(subjects=subjects)))
    val = dict(accuracy=val_accuracy, mcc=val_accuracy, cross_entropy=1.0, epoch=2,
               window_accuracy=0.5)  # fmt: skip
    test = {"subject/accuracy": right / INFANTS, "window/accuracy": 0.5}
    run.record.write_text(json.dumps(dict(name=run.name, seconds=10.0, val=val, test=test)))


def _study(planner: bp.Planner, bench: bd.Benchmark) -> None:
    two = bench.method("two-stream")
    for variant in VARIANTS:
        _finish(planner.table1_run(two, variant, bd.CHOOSING_SEED), VALIDATION[variant],
                TEST[variant])  # fmt: skip
    for seed in bench.method("temporal-only").reported_seeds:
        _finish(planner.table1_run(bench.method("temporal-only"), "", seed), 0.5, 0.5)


def test_the_variant_is_the_validation_best_and_its_reported_seeds_exclude_the_choosing_one(
    tmp_path,
):
    bench = _bench(tmp_path)
    planner = bp.Planner(bench, tmp_path / "work")
    _study(planner, bench)
    two = bench.method("two-stream")
    chosen, figures = planner.chosen_variant(two)
    assert chosen == "pose-pretrained"  # the validation best, the test worst
    assert chosen != max(TEST, key=TEST.get)
    assert {v: f["accuracy"] for v, f in figures.items()} == VALIDATION

    reported = planner.reported_runs(two)
    assert [run.seed for run in reported] == [1, 2, 3]
    assert bd.CHOOSING_SEED not in [run.seed for run in reported]
    assert {run.config for run in reported} == {two.configs[chosen]}
    # Late fusion takes the two-stream choice; none of its own seeds chose, so seed 0 counts.
    late = planner.reported_runs(bench.method("late-fusion"))
    assert [(run.config, run.seed) for run in late] == [
        (bench.method("late-fusion").configs[chosen], 0)
    ]
    # A method without variants chooses nothing: its seeds are 0, 1, 2, all in the study.
    temporal = planner.reported_runs(bench.method("temporal-only"))
    assert [run.seed for run in temporal] == [0, 1, 2]
    study = {run.name for run in planner.study_runs()}
    assert study == {f"two-stream/{v} seed 0" for v in VARIANTS} | {
        f"temporal-only seed {s}" for s in (0, 1, 2)
    }


def test_the_report_leaves_the_choosing_seed_out_of_the_reported_mean(tmp_path):
    bench = _bench(tmp_path)
    work = tmp_path / "work"
    planner = bp.Planner(bench, work)
    _study(planner, bench)
    two, late = bench.method("two-stream"), bench.method("late-fusion")
    # The chosen variant's choosing run scores 0.5 on test; seeds 1, 2, 3 score 0.6, 0.7, 0.8:
    # their mean is 0.7, with the choosing run's 0.65.
    for seed, accuracy in zip((1, 2, 3), (0.6, 0.7, 0.8), strict=True):
        _finish(planner.table1_run(two, "pose-pretrained", seed), 0.9, accuracy)
    _finish(planner.table1_run(late, "pose-pretrained", 0), 0.9, 0.4)
    driver = bm.BenchmarkDriver(bench, tmp_path, work)
    rows = {m.key: planner.reported_runs(m) for m in bench.methods}
    path = driver.report_table1(rows)
    summary = json.loads((work / "table1/summary.json").read_text())
    row = summary["summary"]["two-stream"]
    assert summary["chosen"]["two-stream"] == "pose-pretrained"
    assert row["seeds"] == [1, 2, 3] and row["accuracy"] == pytest.approx(0.7)
    assert row["bootstrap"] == report.TWO_LEVELS
    assert summary["summary"]["late-fusion"]["bootstrap"] == report.ONE_LEVEL
    assert summary["summary"]["temporal-only"]["paired"]["levels"] == 2
    # The chosen variant is pose-pretrained: the unpretrained variants' choosing-seed runs (which
    # lost the choice) are compared with only temporal on equal pretraining.
    control = summary["pretraining_control"]
    assert set(control) == {"scratch", "frozen-random"}
    assert control["scratch"]["seeds"] == [0] and control["scratch"]["accuracy"] == 0.9
    assert control["scratch"]["paired"]["difference"] == pytest.approx(0.4)
    text = path.read_text()
    assert "## Same pretraining" in text and "## What the design builds in" in text
    assert "0.70" in text and "0.82" in text and "0.94" in text and "0.98" in text
    assert report.TWO_LEVELS in text and report.ONE_LEVEL in text


def _comparison(difference: float, low: float, high: float) -> dict:
    paired = dict(difference=difference, ci_low=low, ci_high=high, p_value=0.01,
                  bootstrap=report.TWO_LEVELS)  # fmt: skip
    return dict(paired=paired, mcnemar=dict(p_value=0.02, seeds=[1, 0]))


TITLES = {"ref": "the paper's model", "x": "method X", "y": "method Y", "z": "method Z"}


def test_the_ordering_holds_only_where_every_paired_interval_excludes_zero():
    # Every point estimate favours the reference, but one interval contains 0.
    summary = {
        "ref": {},
        "x": _comparison(-0.10, -0.15, -0.05),
        "y": _comparison(-0.03, -0.08, 0.02),
    }
    text = report.ordering_statement(summary, "ref", ["x", "y"], TITLES)
    assert "holds" not in text and "not established" in text
    assert "Not resolved (the paired 95 % CI contains 0): method Y." in text
    assert "is above method X" in text and "is not resolved against method Y" in text
    verdict = report.ordering_verdict(summary, "ref", ["x", "y"])
    assert not verdict["holds"] and verdict["unresolved"] == ["y"]

    summary["y"] = _comparison(-0.06, -0.11, -0.01)
    text = report.ordering_statement(summary, "ref", ["x", "y"], TITLES)
    assert text.startswith("The paper's ordering holds here")
    assert "+0.060 (95 % CI +0.010 to +0.110" in text  # reference minus other, with its CI
    assert "p = 0.010 (paired bootstrap), 0.020 (McNemar" in text

    summary["y"] = _comparison(0.06, 0.01, 0.11)
    verdict = report.ordering_verdict(summary, "ref", ["x", "y", "z"])
    assert verdict["reversed"] == ["y"] and verdict["missing"] == ["z"]
    text = report.ordering_statement(summary, "ref", ["x", "y", "z"], TITLES)
    assert "Reversed (the CI lies below 0): method Y." in text
    assert "Not run yet: method Z." in text and "is below method Y" in text
