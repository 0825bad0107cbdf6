"""Cross-validation bookkeeping: shared folds, fold overrides, no leakage, the Table-1 report."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from mmengine.config import Config

from gm_plugins.datasets import GMDataset
from gm_plugins.evaluation import cross_validation as cv
from tests.datasets.fake_cache import write_fake_dataset

WINDOW = dict(start_stride=10, span=8, num_windows=None, frame_step=2)


def fake_config(data, cache, test_data=None, test_cache=None) -> Config:
    """A config with GMDataset loaders (no model: only the data side matters here)."""

    def loader(split, root=data, cache_root=cache):
        return dict(
            dataset=dict(
                type="GMDataset",
                ann_file="subjects.csv",
                data_root=str(root),
                cache_root=str(cache_root),
                window=WINDOW,
                split=split,
                num_folds=4,
                test_fold=0,
                val_fold=1,
            )
        )

    test = loader("test") if test_data is None else loader("all", test_data, test_cache)
    return Config(
        dict(train_dataloader=loader("train"), val_dataloader=loader("val"), test_dataloader=test)
    )


def apply(cfg: Config, overrides: dict) -> Config:
    cfg = Config(cfg.to_dict())
    cfg.merge_from_dict(overrides)
    return cfg


def split_subjects(cfg: Config, loader: str) -> set[str]:
    dataset = dict(cfg[loader]["dataset"])
    dataset.pop("type")
    built = GMDataset(**dataset, pipeline=[])
    return {built.get_data_info(i)["subject_id"] for i in range(len(built))}


@pytest.fixture
def fake(tmp_path):
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=4)  # 12 infants
    table, ids, labels = cv.subject_table(fake_config(data, cache))
    return dict(data=data, cache=cache, ids=ids, labels=labels, table=table)


def test_folds_are_made_once_and_identical_for_the_same_seed(fake, tmp_path):
    first = cv.prepare_folds(tmp_path / "a", fake["ids"], fake["labels"], 3, seed=7, repeat=0)
    again = cv.prepare_folds(tmp_path / "b", fake["ids"], fake["labels"], 3, seed=7, repeat=0)
    assert json.loads(first.read_text()) == json.loads(again.read_text())
    other = cv.prepare_folds(tmp_path / "a", fake["ids"], fake["labels"], 3, seed=7, repeat=1)
    assert json.loads(other.read_text())["seed"] == 8
    assert json.loads(other.read_text())["folds"] != json.loads(first.read_text())["folds"]
    # A second comparison in the same work dir reuses the file, and refuses other settings.
    before = first.stat().st_mtime_ns
    assert cv.prepare_folds(tmp_path / "a", fake["ids"], fake["labels"], 3, 7, 0) == first
    assert first.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="seed 7 \\(asked: 9\\)"):
        cv.prepare_folds(tmp_path / "a", fake["ids"], fake["labels"], 3, seed=9, repeat=0)
    with pytest.raises(ValueError, match=r"3 folds \(asked: 4\)"):
        cv.prepare_folds(tmp_path / "a", fake["ids"], fake["labels"], 4, seed=7, repeat=0)


def test_every_config_gets_the_same_splits_and_no_infant_leaks(fake, tmp_path):
    folds_file = cv.prepare_folds(tmp_path, fake["ids"], fake["labels"], 3, seed=0, repeat=0)
    other_cache = tmp_path / "other_cache"  # e.g. an ablation's cache: same infants
    (tmp_path / "other_cache").symlink_to(fake["cache"])
    configs = [fake_config(fake["data"], fake["cache"]), fake_config(fake["data"], other_cache)]
    tested = []
    for fold in range(3):
        run = cv.FoldRun("x.py", "x", repeat=0, fold=fold, num_folds=3)
        splits = []
        for cfg in configs:
            cfg = apply(cfg, cv.fold_overrides(cfg, folds_file, run))
            splits.append(
                {loader: split_subjects(cfg, loader) for loader in cv.LOADERS}
            )  # fmt: skip
        assert splits[0] == splits[1]  # both configs see the same infants in every role
        train, val, test = (splits[0][loader] for loader in cv.LOADERS)
        assert not train & test and not train & val and not val & test
        assert train | val | test == set(fake["ids"])
        tested.append(test)
    # Every infant is tested exactly once over the folds.
    assert sorted(s for t in tested for s in t) == sorted(fake["ids"])
    # Each test fold is stratified: one WMs, one FMs, one PR... of the 4 per class.
    folds = json.loads(folds_file.read_text())["folds"]
    label_of = dict(zip(fake["ids"], fake["labels"], strict=True))
    for fold in range(3):
        labels = sorted(label_of[s] for s, f in folds.items() if f == fold)
        assert set(labels) == {"WMs", "FMs", "PR"}


def test_an_independent_test_set_stays_whole(fake, tmp_path):
    other_data, other_cache = write_fake_dataset(tmp_path / "site2", per_class=2)
    cfg = fake_config(fake["data"], fake["cache"], other_data, other_cache)
    folds_file = cv.prepare_folds(tmp_path, fake["ids"], fake["labels"], 3, seed=0, repeat=0)
    overrides = cv.fold_overrides(cfg, folds_file, cv.FoldRun("x.py", "x", 0, 2, 3))
    assert not any(key.startswith("test_dataloader") for key in overrides)
    assert overrides["train_dataloader.dataset.test_fold"] == 2
    assert overrides["val_dataloader.dataset.val_fold"] == 0
    assert len(split_subjects(apply(cfg, overrides), "test_dataloader")) == 6


def test_wrapped_datasets_are_split_too(fake, tmp_path):
    cfg = fake_config(fake["data"], fake["cache"])
    inner = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(type="RepeatDataset", times=2, dataset=inner)
    folds_file = cv.prepare_folds(tmp_path, fake["ids"], fake["labels"], 3, seed=0, repeat=0)
    overrides = cv.fold_overrides(cfg, folds_file, cv.FoldRun("x.py", "x", 0, 1, 3))
    assert overrides["train_dataloader.dataset.dataset.test_fold"] == 1
    assert overrides["test_dataloader.dataset.split"] == "test"


def test_plan_runs_refuses_two_configs_with_one_name():
    runs = cv.plan_runs(["a/x.py", "b/y.py"], num_folds=3, repeats=2)
    assert len(runs) == 12 and runs[0].label == "repeat0_fold0" and runs[0].val_fold == 1
    assert runs[2].val_fold == 0  # the last fold validates on the first
    with pytest.raises(ValueError, match="x"):
        cv.plan_runs(["a/x.py", "b/x.py"], num_folds=3, repeats=1)


def result(accuracy, mcc, matrix):
    metrics = {f"subject/{key}": accuracy for key, _ in cv.REPORT_METRICS}
    metrics.update({"subject/mcc": mcc, "subject/confusion_matrix": matrix})
    metrics["window/accuracy"] = accuracy / 2
    return dict(metrics=metrics)


def markdown_rows(table: str) -> list[list[str]]:
    """The cells of a Markdown pipe table, stripped, one list per line."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]


def test_summary_table_and_csv(tmp_path):
    results = [
        result(1.0, 1.0, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        result(0.5, 0.2, [[1, 0, 0], [1, 0, 0], [0, 0, 1]]),
        result(0.6, math.nan, [[0, 1, 0], [0, 1, 0], [0, 0, 1]]),
    ]
    summary = cv.summarise(results)
    assert summary["accuracy"][0] == pytest.approx(0.7)
    assert summary["accuracy"][1] == pytest.approx(np.std([1.0, 0.5, 0.6], ddof=1))
    assert summary["mcc"] == pytest.approx((0.6, np.std([1.0, 0.2], ddof=1)))  # NaN skipped
    assert summary["confusion_matrix"] == [[2, 1, 0], [1, 2, 0], [0, 0, 3]]
    assert summary["window_accuracy"][0] == pytest.approx(0.35)
    table = cv.markdown_table({"two-stream": summary})
    header, rule, row = markdown_rows(table)
    assert header == ["Method", "Accuracy", "MCC", "Precision", "Recall", "F1", "Kappa",
                      "Window accuracy", "Runs"]  # fmt: skip
    assert all(set(cell) <= set(":-") for cell in rule)
    assert row[:3] == ["two-stream", "0.700 ± 0.265", "0.600 ± 0.566"]
    assert row[-2:] == ["0.350 ± 0.132", "3"]
    path = cv.write_csv(tmp_path / "report.csv", {"two-stream": summary})
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["method"] == "two-stream" and rows[0]["runs"] == "3"
    assert float(rows[0]["accuracy_mean"]) == pytest.approx(0.7)
    png = cv.plot_comparison(tmp_path / "comparison.png", {"a": summary, "b": summary})
    assert png.stat().st_size > 1000


def test_the_report_covers_finished_folds_and_names_missing_ones(tmp_path):
    runs = cv.plan_runs(["configs/a.py", "configs/b.py"], num_folds=2, repeats=1)
    metrics = result(0.5, 0.25, [[1, 0, 0], [1, 0, 0], [0, 0, 1]])["metrics"]
    metrics["checkpoint"] = "best.pth"
    finished = [run for run in runs if (run.name, run.fold) != ("b", 1)]
    for run in finished:
        fold = cv.fold_result(run, 3, tmp_path / "folds.json", metrics, seconds=12.34)
        assert fold["checkpoint"] == "best.pth" and "checkpoint" not in fold["metrics"]
        assert (fold["seed"], fold["val_fold"], fold["seconds"]) == (3, (run.fold + 1) % 2, 12.3)
        run.result_file(tmp_path).parent.mkdir(parents=True)
        run.result_file(tmp_path).write_text(json.dumps(fold))
    text = cv.write_report(tmp_path, runs, folds=2, repeats=1, seed=3)
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Cross-validation: 2 folds by infant x 1 repeat(s), seed 3\n")
    assert text in report and "b: 1 fold(s) not finished" in text
    rows = {row[0]: row for row in markdown_rows(text.split("\n\n")[0])[2:]}
    assert rows["a"][-1] == "2" and rows["b"][-1] == "1" and rows["a"][1] == "0.500 ± 0.000"
    assert [len(v) for v in json.loads((tmp_path / "folds.json").read_text()).values()] == [2, 1]
    csv_rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert [r["method"] for r in csv_rows] == ["a", "b"] and csv_rows[0]["accuracy_sd"] == "0.0000"
    assert (tmp_path / "a" / "confusion_matrix.png").is_file()
