"""Data-loading benchmark: the timing cache, loader timing and the data/step ratio of the logs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gm_plugins.benchmarks import dataloader as lb
from gm_plugins.datasets.cache import read_cached_video
from gm_plugins.datasets.subjects import read_subjects
from gm_plugins.utils.config import load_config
from tests.runner_configs import REPO_ROOT

DEMO = str(REPO_ROOT / "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py")


@pytest.fixture(scope="module")
def timing_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("timing")
    return lb.write_timing_cache(root, num_subjects=3, seconds=4.0, size=32)


def test_timing_cache_is_a_valid_dataset_at_the_asked_size(timing_cache):
    ann_file, cache_root = timing_cache
    rows = read_subjects(ann_file, None, require_label=True, check_videos=False)
    assert [row["subject_id"] for row in rows] == ["t0000", "t0001", "t0002"]
    assert len({row["label"] for row in rows}) == 3
    video = read_cached_video(cache_root, "t0001")
    assert video.frames.shape == (24, 32, 32, 3) and video.flow.shape == (23, 32, 32, 2)
    assert video.meta["sample_fps"] == 6.0


def test_timing_cache_is_reused_when_present_and_rewritten_at_another_size(timing_cache):
    ann_file, cache_root = timing_cache
    before = (cache_root / "t0000" / "frames.npy").stat().st_mtime_ns
    lb.write_timing_cache(ann_file.parent, num_subjects=3, seconds=4.0, size=32)
    assert (cache_root / "t0000" / "frames.npy").stat().st_mtime_ns == before
    lb.write_timing_cache(ann_file.parent, num_subjects=1, seconds=4.0, size=16)
    assert read_cached_video(cache_root, "t0000").frames.shape[1] == 16
    lb.write_timing_cache(ann_file.parent, num_subjects=3, seconds=4.0, size=32)  # restore


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_counts_every_window_of_every_infant(timing_cache, workers):
    ann_file, cache_root = timing_cache
    cfg = load_config(DEMO)
    loader = lb.loader_config(cfg, ann_file, cache_root, workers, batch_size=4)
    assert loader["dataset"]["split"] == "all" and loader["persistent_workers"] == (workers > 0)
    result = lb.time_loader(loader, epochs=2)
    # 24 frames (4 s at 6 fps); a 1 s window spans 7 of them and starts every 3: 6 windows per
    # infant, one timed epoch.
    assert result["windows"] == 3 * 6
    assert result["windows_per_s"] == pytest.approx(result["windows"] / result["seconds"])
    # One RGB frame (3 x 32 x 32 uint8) and 6 float32 flow fields (2 x 32 x 32) per window.
    assert result["mib_per_window"] == pytest.approx((3 * 32 * 32 + 6 * 2 * 32 * 32 * 4) / 2**20)


def test_data_time_ratio_reads_the_training_lines_of_the_newest_log(tmp_path):
    old = tmp_path / "20260101_000000" / "vis_data"
    new = tmp_path / "20260102_000000" / "vis_data"
    for folder in (old, new):
        folder.mkdir(parents=True)
    (old / "scalars.json").write_text(json.dumps(dict(loss=1, data_time=9.0, time=9.0)) + "\n")
    lines = [dict(loss=1.0, data_time=5.0, time=6.0)]  # the first: worker start-up, skipped
    lines += [dict(loss=1.0, data_time=d, time=t) for d, t in [(0.1, 1.0), (0.2, 2.0), (0.3, 2.0)]]
    lines += [dict(accuracy=0.5, step=1)]  # a validation line
    (new / "scalars.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = lb.data_time_ratio(tmp_path)
    assert result["logged_steps"] == 3
    assert result["data_time"] == pytest.approx(0.2) and result["step_time"] == 2.0
    assert result["ratio"] == pytest.approx(0.1)


def test_data_time_ratio_names_the_fix_without_logs(tmp_path):
    with pytest.raises(FileNotFoundError, match="LocalVisBackend"):
        lb.data_time_ratio(tmp_path)


@pytest.mark.slow
def test_training_iterations_log_data_and_step_time(timing_cache, tmp_path):
    ann_file, cache_root = timing_cache
    result = lb.time_training(load_config(DEMO), ann_file, cache_root, 0, 4, 3, tmp_path / "w")
    assert result["logged_steps"] == 2  # three iterations, the first left out
    assert 0 < result["data_time"] < result["step_time"]
    assert 0 < result["ratio"] < 1
    assert result["samples_per_s"] == pytest.approx(4 / result["step_time"])
    assert not list((tmp_path / "w").glob("*.pth"))  # timing runs keep no checkpoints


@pytest.mark.slow
def test_tool_prints_a_row_per_worker_count(tmp_path):
    out = subprocess.run(
        [sys.executable, "tools/benchmarks/benchmark_dataloader.py", "--config", DEMO, "--work-dir",
         str(tmp_path), "--workers", "0", "1", "--subjects", "2", "--seconds", "3", "--size",
         "32", "--epochs", "2", "--batch-size", "4", "--train-iters", "2", "--train-batch", "2",
         "--threads", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    table = out.split("train data/step")[1].split("\n")[1:3]
    assert [row.split()[:2] for row in table] == [["0", "4"], ["1", "4"]]
    assert all(np.isfinite(float(row.split()[2])) for row in table)
    assert all(0 < float(row.split()[3]) < 1 for row in table)
