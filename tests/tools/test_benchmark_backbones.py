"""tools/analysis_tools/benchmark_backbones.py: the leaderboard of two tiny configs, a rerun
that redoes nothing, and the pieces it is made of (MCC, bootstrap intervals, cached figures,
ranking)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mmengine.config import Config

from gm_plugins.experiments import backbone_benchmark as bb
from gm_plugins.experiments import backbone_cost as bc
from gm_plugins.experiments import backbone_leaderboard as bl
from tests.datasets.fake_cache import write_fake_dataset
from tests.runner_configs import REPO_ROOT, tiny_demo_config

#: 16 px windows of the fake cache: 1 RGB frame and 6 flow fields.
TINY_SHAPES = "input_shapes=dict(rgb=(1, 3, 16, 16), flow=(6, 2, 16, 16))"
MOBILENET = "dict(_delete_=True, type='MobileNetV2', pretrained=None)"


def tiny_configs(tmp_path: Path) -> list[Path]:
    """The demo model (ResNet-18, 3 stages) and MobileNetV2 in both streams, on 9 fake infants
    that carry the synthetic generator's meta.json."""
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=3)
    (data / "meta.json").write_text(json.dumps({"generator_version": "test"}))
    resnet = tiny_demo_config(tmp_path / "tiny-r18.py", data, cache)
    mobilenet = tiny_demo_config(tmp_path / "tiny-mobilenetv2.py", data, cache)
    with open(resnet, "a") as stream:
        stream.write(f"model = dict({TINY_SHAPES})\n")
    with open(mobilenet, "a") as stream:
        stream.write(
            f"model = dict({TINY_SHAPES}, rgb_backbone={MOBILENET}, flow_backbone={MOBILENET})\n"
        )
    return [resnet, mobilenet]


def run_tool(configs: list[Path], work_dir: Path) -> str:
    """Run the tool (3 folds, 2 at once, one torch thread each); returns its output."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, "tools/analysis_tools/benchmark_backbones.py", *map(str, configs),
         "--work-dir", str(work_dir), "--results-dir", str(work_dir.parent / "results"),
         "--folds", "3", "--seed", "1", "--jobs", "2",
         "--threads", "1", "--warmup", "1", "--speed-steps", "1", "--speed-repeats", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run.stdout


def direct_parameter_count(config: Path) -> int:
    from mmaction.apis import init_recognizer

    from gm_plugins.compat import library_scope

    with library_scope("mmaction"):
        model = init_recognizer(str(config), None, device="cpu")
    return sum(p.numel() for p in model.parameters())


def fold_metrics(work_dir: Path, name: str) -> list[dict]:
    files = sorted((work_dir / "cv" / name).glob("repeat0_fold*/result.json"))
    return [json.loads(path.read_text())["metrics"] for path in files]


def stamps(work_dir: Path) -> dict[Path, int]:
    files = [*work_dir.glob("figures/*.json"), *work_dir.glob("cv/*/*/result.json")]
    return {path: path.stat().st_mtime_ns for path in files}


@pytest.mark.slow
def test_the_leaderboard_reports_the_folds_and_a_rerun_redoes_nothing(tmp_path):
    configs = tiny_configs(tmp_path)
    work_dir = tmp_path / "work"
    run_tool(configs, work_dir)

    table = pd.read_csv(work_dir / "leaderboard.csv")
    assert sorted(table["config"]) == ["tiny-mobilenetv2", "tiny-r18"]
    assert list(table["accuracy_mean"]) == sorted(table["accuracy_mean"], reverse=True)
    markdown = (work_dir / "leaderboard.md").read_text()
    assert markdown.startswith("# Backbone leaderboard (synthetic data)")
    for config in configs:
        row = table.set_index("config").loc[config.stem]
        metrics = fold_metrics(work_dir, config.stem)
        assert row.runs == len(metrics) == 3
        accuracies = [m["subject/accuracy"] for m in metrics]
        assert row.accuracy_mean == pytest.approx(np.mean(accuracies), abs=1e-4)
        assert row.accuracy_sd == pytest.approx(np.std(accuracies, ddof=1), abs=1e-4)
        assert row.mcc_mean == pytest.approx(np.mean([m["subject/mcc"] for m in metrics]), abs=1e-4)
        assert 0 <= row.accuracy_ci_low <= row.accuracy_pooled <= row.accuracy_ci_high <= 1
        assert -1 <= row.mcc_ci_low <= row.mcc_pooled <= row.mcc_ci_high <= 1
        assert row.parameters == direct_parameter_count(config)
        assert row.flops_per_window > 0
        assert row.train_samples_per_s > 0 and row.inference_windows_per_s > 0
        line = next(x for x in markdown.splitlines() if f"| {config.stem} " in x)
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert cells[4] == f"{row.accuracy_mean:.3f} ± {row.accuracy_sd:.3f}"
        assert cells[8] == f"{row.parameters / 1e6:.2f}" and cells[-1] == "3/3"
    assert "| ResNet-18 (3 stages) " in markdown and "| MobileNetV2 " in markdown
    by_config = table.set_index("config")
    reference, other = by_config.loc["tiny-r18"], by_config.loc["tiny-mobilenetv2"]
    assert "## Paired with the reference\n\nReference: tiny-r18." in markdown
    assert pd.isna(reference.paired_infants) and math.isnan(reference.paired_difference)
    assert other.paired_infants == 9  # every infant, tested once by each config
    assert other.paired_difference == pytest.approx(
        other.accuracy_pooled - reference.accuracy_pooled, abs=1e-4
    )
    assert other.paired_ci_low <= other.paired_difference <= other.paired_ci_high
    assert (work_dir / "leaderboard.png").stat().st_size > 0

    outputs = {name: (work_dir / name).read_bytes() for name in ("leaderboard.md",
               "leaderboard.csv", "leaderboard.png")}  # fmt: skip
    finished = stamps(work_dir)
    assert len(finished) == 2 + 6  # figures of 2 configs, 2 x 3 folds
    rerun = run_tool(configs, work_dir)
    assert "6 fold runs, 6 already finished, 0 to run" in rerun
    assert "measured in" not in rerun and rerun.count("(from ") == 2
    assert stamps(work_dir) == finished  # nothing retrained or remeasured
    for name, content in outputs.items():
        assert (work_dir / name).read_bytes() == content, name


@pytest.mark.slow
def test_skip_cv_measures_only_and_rejects_a_missing_config(tmp_path):
    configs = tiny_configs(tmp_path)
    work_dir = tmp_path / "work"
    bench = bb.BackboneBenchmark(
        [str(configs[0])], work_dir, folds=3, skip_cv=True, speed=bc.SpeedSettings(1, 0, 1, 1)
    )
    assert bb.benchmark_backbones(bench) == 0
    row = pd.read_csv(work_dir / "leaderboard.csv").iloc[0]
    assert row.runs == 0 and math.isnan(row.accuracy_mean) and row.parameters > 0
    assert not list(work_dir.glob("cv/tiny-r18/*/result.json"))  # nothing trained
    assert not (work_dir / "leaderboard.png").exists()  # no accuracy to plot
    assert "| n/a " in (work_dir / "leaderboard.md").read_text()

    missing = bb.BackboneBenchmark([str(tmp_path / "nowhere.py")], tmp_path / "other")
    assert bb.benchmark_backbones(missing) == 2
    assert not (tmp_path / "other").exists()


def test_mcc_of_confusion_matrices_is_sklearns():
    from sklearn.metrics import confusion_matrix, matthews_corrcoef

    rng = np.random.default_rng(0)
    for _ in range(20):
        truth, predicted = rng.integers(0, 3, 30), rng.integers(0, 3, 30)
        matrix = confusion_matrix(truth, predicted, labels=[0, 1, 2])
        expected = matthews_corrcoef(truth, predicted)
        assert bl.mcc_from_confusion(matrix) == pytest.approx(expected)
    one_class_predicted = np.array([[3, 0, 0], [3, 0, 0], [3, 0, 0]])
    assert bl.mcc_from_confusion(one_class_predicted) == 0.0  # undefined: 0, as sklearn


def test_bootstrap_intervals_count_infants_not_repeats():
    pooled = np.array([[8, 1, 1], [2, 7, 1], [1, 1, 8]])  # 30 infants, 23 right
    interval = bl.bootstrap_intervals(pooled, infants=30)
    low, high = interval["accuracy"]
    assert low < 23 / 30 < high and low > 0.5 and high < 0.95
    assert interval == bl.bootstrap_intervals(pooled, infants=30)  # seeded: reproducible
    # Two repeats over the same 30 infants are no more certain than one ...
    assert bl.bootstrap_intervals(2 * pooled, infants=30) == interval
    # ... whereas 120 infants are.
    narrow = bl.bootstrap_intervals(4 * pooled, infants=120)["accuracy"]
    assert narrow[1] - narrow[0] < 0.7 * (high - low)


def test_figures_are_measured_once_per_setting(tmp_path, monkeypatch):
    calls = []

    def fake_measure(cfg, config, speed):
        calls.append(speed.threads)
        return dict(measured_with=bc.measurement_key(cfg, speed), threads=speed.threads)

    monkeypatch.setattr(bc, "measure_config", fake_measure)
    cfg = Config(
        dict(
            model=dict(type="MultiStreamRecognizer", input_shapes=dict(rgb=(1, 3, 16, 16))),
            train_dataloader=dict(batch_size=4),
            test_dataloader=dict(batch_size=8),
        )
    )
    one, two = bc.SpeedSettings(threads=1), bc.SpeedSettings(threads=2)
    assert bc.load_or_measure(cfg, "a/x.py", tmp_path, one) == (
        dict(measured_with=bc.measurement_key(cfg, one), threads=1),
        True,
    )
    assert bc.load_or_measure(cfg, "a/x.py", tmp_path, one)[1] is False  # read back, equal
    assert bc.load_or_measure(cfg, "a/x.py", tmp_path, two)[0]["threads"] == 2  # other setting
    cfg.train_dataloader.batch_size = 16
    assert bc.load_or_measure(cfg, "a/x.py", tmp_path, two)[1] is True  # other batch size
    assert calls == [1, 2, 2]
    assert json.loads((tmp_path / "figures" / "x.json").read_text())["threads"] == 2


def test_the_leaderboard_ranks_by_accuracy_and_shows_what_is_missing():
    backbones = {n: dict(rgb="A", flow="B") for n in ("slow", "none", "fast")}
    figures = {
        "slow": dict(parameters=2_000_000, flops_per_window=3 * 10**9,
                     train_samples_per_s=1.0, inference_windows_per_s=2.0),
        "fast": dict(parameters=1_000_000, flops_per_window=10**8,
                     train_samples_per_s=10.0, inference_windows_per_s=20.0),
    }  # fmt: skip

    def fold(accuracy: float, matrix: list) -> dict:
        return dict(repeat=0, metrics={"subject/accuracy": accuracy, "subject/mcc": 0.0,
                                       "subject/confusion_matrix": matrix})  # fmt: skip

    results = {
        "slow": [fold(0.5, [[1, 1, 0], [0, 1, 1], [0, 0, 0]])],
        "fast": [fold(1.0, [[1, 0, 0], [0, 1, 0], [0, 0, 2]])],
    }
    frame = bl.leaderboard_frame(backbones, figures, results)
    assert list(frame["config"]) == ["fast", "slow", "none"]
    assert frame.loc[2, "runs"] == 0 and pd.isna(frame.loc[2, "parameters"])
    text = bl.markdown_table(frame, expected_runs=1)
    fast, slow, none = (line for line in text.splitlines()[2:])
    assert "| 1.000 ± 0.000 " in fast and "| 1.00 " in fast and "| 0.100 " in fast
    assert "| 0.500 ± 0.000 " in slow and "| 3.000 " in slow
    assert none.count("| n/a ") == 8 and "| 0/1 " in none


def decisions_of(labels: list[int], predicted: list[int], repeat: int = 0) -> dict:
    return {repeat: {f"s{i}": pair for i, pair in enumerate(zip(labels, predicted, strict=True))}}


def test_a_paired_difference_scores_both_configs_on_the_same_infants():
    labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    right = decisions_of(labels, labels)
    wrong_on_six = decisions_of(labels, labels[:4] + [(y + 1) % 3 for y in labels[4:]])
    better = bl.paired_difference(right, wrong_on_six)
    assert better["paired_infants"] == 10
    assert better["paired_difference"] == pytest.approx(0.6)
    assert 0 < better["paired_ci_low"] < 0.6 < better["paired_ci_high"] <= 1
    assert better["mcnemar_p"] == pytest.approx(2 * 0.5**6)  # 6 discordant, all one way
    worse = bl.paired_difference(wrong_on_six, right)
    assert worse["paired_difference"] == pytest.approx(-0.6) and worse["paired_ci_high"] < 0
    same = bl.paired_difference(right, right)
    assert same["paired_difference"] == 0 and same["paired_p"] == 1 and same["mcnemar_p"] == 1

    first_five = {0: {s: d for s, d in wrong_on_six[0].items() if int(s[1:]) < 5}}
    partial = bl.paired_difference(right, first_five)  # only the infants both tested
    assert partial["paired_infants"] == 5 and partial["paired_difference"] == pytest.approx(0.2)
    assert bl.paired_difference(right, {}) is None
    assert bl.paired_difference(right, {1: right[0]}) is None  # no repeat in common

    two_repeats = {**right, **decisions_of(labels, labels, repeat=1)}
    both = {**wrong_on_six, **decisions_of(labels, labels, repeat=1)}
    averaged = bl.paired_difference(two_repeats, both)  # repeats averaged per infant
    assert averaged["paired_difference"] == pytest.approx(0.3)
    assert math.isnan(averaged["mcnemar_p"])  # McNemar compares single decisions

    relabelled = decisions_of([1, *labels[1:]], labels)
    with pytest.raises(ValueError, match="s0"):
        bl.paired_difference(right, relabelled)


def test_the_paired_section_says_which_differences_the_ci_resolves():
    frame = pd.DataFrame({
        "config": ["up", "ref", "flat", "down", "untested"],
        "paired_infants": pd.array([40, pd.NA, 40, 38, pd.NA], dtype="Int64"),
        "paired_difference": [0.2, math.nan, 0.05, -0.3, math.nan],
        "paired_ci_low": [0.05, math.nan, -0.1, -0.45, math.nan],
        "paired_ci_high": [0.35, math.nan, 0.2, -0.15, math.nan],
        "paired_p": [0.004, math.nan, 0.5, 0.0001, math.nan],
        "mcnemar_p": [0.01, math.nan, 0.6, math.nan, math.nan],
    })  # fmt: skip
    text = bl.paired_section(frame, "ref")
    assert text.startswith("\n## Paired with the reference\n\nReference: ref.")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert set(rows) == {"Config", "up", "flat", "down"}  # not the reference, not the untested
    assert "| +0.200 " in rows["up"] and "| [+0.050, +0.350] " in rows["up"]
    assert rows["up"].rstrip(" |").endswith("above") and rows["down"].rstrip(" |").endswith("below")
    assert "| < 0.001 " in rows["down"] and "| n/a " in rows["down"]
    assert rows["flat"].rstrip(" |").endswith("not resolved")
    assert "Above the reference: up. Below the reference: down. Not resolved" in text
    assert "flat; their order against the reference is not established" in text
    assert bl.paired_section(frame[frame["config"].isin(["ref", "untested"])], "ref") == ""
