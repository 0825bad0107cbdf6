"""tools/cross_validate.py end to end on a tiny config: report, kill, resume, same report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.datasets.fake_cache import write_fake_dataset
from tests.runner_configs import REPO_ROOT
from tests.runner_configs import tiny_demo_config as tiny_config


def cross_validate(config: Path, work_dir: Path, **popen) -> subprocess.Popen:
    command = [sys.executable, "tools/cross_validate.py", str(config), "--folds", "3",
               "--seed", "3", "--work-dir", str(work_dir)]  # fmt: skip
    return subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        **popen,
    )  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_run_resumes_without_retraining_and_gives_the_same_report(tmp_path):
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=3)
    config = tiny_config(tmp_path / "tiny.py", data, cache)
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"

    reference = cross_validate(config, reference_dir)  # uninterrupted, side by side
    interrupted = cross_validate(config, resumed_dir, start_new_session=True)
    first = resumed_dir / "tiny" / "repeat0_fold0"
    wait_for(first / "result.json", interrupted)
    os.killpg(interrupted.pid, signal.SIGKILL)  # the tool and its training child
    interrupted.wait()
    assert not (resumed_dir / "tiny" / "repeat0_fold2" / "result.json").exists()
    finished_at = (first / "result.json").stat().st_mtime_ns

    resumed = cross_validate(config, resumed_dir)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    assert "3 fold runs, 1 already finished, 2 to run" in output
    assert (first / "result.json").stat().st_mtime_ns == finished_at
    assert (first / "run.log").read_text().count("$ ") == 1  # fold 0 trained once

    reference_output, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, reference_output[-3000:]
    report = (resumed_dir / "report.md").read_text()
    assert report == (reference_dir / "report.md").read_text()
    assert (resumed_dir / "report.csv").read_text() == (reference_dir / "report.csv").read_text()
    assert "| tiny | " in report and "| 3 |" in report
    assert (resumed_dir / "tiny" / "confusion_matrix.png").is_file()
    assert (resumed_dir / "comparison.png").is_file()
    assert (resumed_dir / "folds" / "repeat0.json").read_text() == (
        reference_dir / "folds" / "repeat0.json"
    ).read_text()
    # Only the tested checkpoint is kept per fold.
    assert len(list(first.glob("*.pth"))) == 1


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


def test_the_pytorch_launcher_without_enough_gpus_is_refused_up_front(tmp_path, capsys):
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location(
        "cross_validate", REPO_ROOT / "tools" / "cross_validate.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    data, cache = write_fake_dataset(tmp_path / "a", per_class=3)
    config = tiny_config(tmp_path / "tiny.py", data, cache)
    too_many = str(torch.cuda.device_count() + 1)
    code = tool.main([str(config), "--work-dir", str(tmp_path / "w"), "--launcher", "pytorch",
                      "--gpus", too_many])  # fmt: skip
    assert code == 2
    assert "needs that many CUDA GPUs" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # refused before anything was written
