"""tools/cross_validate.py on a tiny config: report, kill anywhere, rerun, same report."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.datasets.fake_cache import write_fake_dataset
from tests.engine.resume_runs import (
    finish,
    kill_when,
    read_from,
    resumable_demo_config,
    start,
    train_iteration,
)
from tests.runner_configs import REPO_ROOT
from tests.runner_configs import tiny_demo_config as tiny_config

#: Where a cross-validation is killed, in the order a run passes them: (what, log to watch
#: under the work dir, the log line that triggers the kill).
KILL_POINTS = (
    ("inside epoch 2 of fold 0", "tiny/repeat0_fold0/run.log", train_iteration(2, 2)),
    ("validating epoch 2 of fold 0", "tiny/repeat0_fold0/run.log", r"Epoch\(val\)\s*\[2\]\["),
    ("testing fold 0", "tiny/repeat0_fold0/run.log", r"Epoch\(test\)\s*\["),
    ("between folds 0 and 1", "tool.log", r"repeat0_fold0: infant accuracy"),
    ("inside epoch 2 of fold 1", "tiny/repeat0_fold1/run.log", train_iteration(2, 2)),
    ("inside epoch 1 of fold 2", "tiny/repeat0_fold2/run.log", train_iteration(1, 2)),
)
#: Seeds the choice of the kill point; set GM_KILL_SEED to try others.
KILL_SEED = int(os.environ.get("GM_KILL_SEED", "5"))


def cross_validate(config: Path, work_dir: Path) -> subprocess.Popen:
    work_dir.mkdir(parents=True, exist_ok=True)
    return start(
        "tools/cross_validate.py", str(config), "--folds", "3", "--seed", "3",
        "--work-dir", str(work_dir), log=work_dir / "tool.log",
    )  # fmt: skip


def finished_folds(work_dir: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in work_dir.glob("tiny/*/result.json")}


@pytest.mark.slow
def test_a_run_killed_anywhere_resumes_to_the_same_report(tmp_path):
    what, watched, pattern = random.Random(KILL_SEED).choice(KILL_POINTS)
    context = f"killed {what} (GM_KILL_SEED={KILL_SEED})"
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=3)
    config = resumable_demo_config(tmp_path / "tiny.py", data, cache, max_epochs=2)
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"

    reference = cross_validate(config, reference_dir)  # uninterrupted, side by side
    kill_when(cross_validate(config, resumed_dir), resumed_dir / watched, pattern)
    finished = finished_folds(resumed_dir)
    log = resumed_dir / "tool.log"
    killed_at = log.stat().st_size
    finish(cross_validate(config, resumed_dir), log)
    finish(reference, reference_dir / "tool.log")

    assert f"3 fold runs, {len(finished)} already finished" in read_from(log, killed_at), context
    for path, stamp in finished.items():  # folds finished before the kill were not rerun
        assert path.stat().st_mtime_ns == stamp, (path, context)
    for name in ("report.md", "report.csv", "folds/repeat0.json"):
        expected = (reference_dir / name).read_bytes()
        assert (resumed_dir / name).read_bytes() == expected, (name, context)
    for fold in range(3):
        directory = f"tiny/repeat0_fold{fold}"
        expected = json.loads((reference_dir / directory / "result.json").read_text())["metrics"]
        actual = json.loads((resumed_dir / directory / "result.json").read_text())["metrics"]
        assert actual == expected, (fold, context)
        # Only the tested checkpoint is kept per fold.
        assert len(list((resumed_dir / directory).glob("*.pth"))) == 1, (fold, context)
    report = (resumed_dir / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| tiny "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "tiny" and cells[-1] == "3", row  # 3 folds reported
    assert (resumed_dir / "tiny" / "confusion_matrix.png").is_file()
    assert (resumed_dir / "comparison.png").is_file()


def test_configs_of_different_infants_are_refused(tmp_path):
    data, cache = write_fake_dataset(tmp_path / "a", per_class=3)
    other_data, other_cache = write_fake_dataset(tmp_path / "b", per_class=4)
    first = tiny_config(tmp_path / "first.py", data, cache)
    second = tiny_config(tmp_path / "second.py", other_data, other_cache)
    run = subprocess.run(
        [sys.executable, "tools/cross_validate.py", str(first), str(second), "--folds", "3",
         "--work-dir", str(tmp_path / "work2")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "whose infants differ" in run.stderr and "second.py" in run.stderr


def test_the_pytorch_launcher_without_enough_gpus_is_refused_up_front(
    tmp_path, capsys, monkeypatch
):
    import torch

    from gm_plugins.experiments.cross_validation import CrossValidation, cross_validate

    # A CUDA machine with one GPU asked for two processes per fold (without CUDA the
    # processes would run on CPUs instead).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    data, cache = write_fake_dataset(tmp_path / "a", per_class=3)
    config = tiny_config(tmp_path / "tiny.py", data, cache)
    job = CrossValidation([str(config)], tmp_path / "w", launcher="pytorch", gpus=2)
    assert cross_validate(job) == 2
    assert "needs that many CUDA GPUs" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # refused before anything was written


def test_distributed_folds_on_cpus_run_torchrun_and_share_the_cores(tmp_path, monkeypatch):
    import torch

    from gm_plugins.experiments.cross_validation import CrossValidation, FoldRunner

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    job = CrossValidation(["a.py"], tmp_path, launcher="pytorch", gpus=2, jobs=2)
    runner = FoldRunner(job, {}, {})
    assert runner.threads == 2  # 8 cores / (2 folds at once x 2 processes each)
    first, second = runner.train_command(), runner.train_command()
    assert first[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node=2" in first
    assert first[-2:] == ["-m", "gm_plugins.engine.train"]  # an entry point, not a script path
    ports = {int(c.split("=")[1]) for c in (*first, *second) if c.startswith("--master_port=")}
    assert len(ports) == 2  # concurrent folds rendezvous on ports of their own
    single = FoldRunner(CrossValidation(["a.py"], tmp_path, jobs=2), {}, {})
    assert single.threads == 4 and "torch.distributed.run" not in single.train_command()
