"""tools/train.py and tools/test.py run configs end to end in a subprocess."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from tests.runner_configs import toy_runner_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_tool(*args: str) -> subprocess.CompletedProcess:
    # The toy configs import tests.toy_data: the repository root goes on the children's path
    # (gm_plugins itself comes from the installed package).
    path = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )


def write_config(path: Path, cfg: dict) -> Path:
    Config(cfg).dump(str(path))
    return path


@pytest.mark.slow
def test_train_then_test_then_resume_with_the_tools(tmp_path):
    config = write_config(tmp_path / "toy_tsn.py", toy_runner_config(str(tmp_path / "unused")))
    work_dir = tmp_path / "work"

    train = run_tool(
        "tools/train.py", str(config), "--work-dir", str(work_dir), "--seed", "1",
        "--cfg-options", "log_level=INFO",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    checkpoint = work_dir / "iter_1.pth"
    assert checkpoint.is_file()
    # The runner's log says how malloc was set (glibc keeps freed memory unless told not to).
    assert "memory allocator " in train.stdout + train.stderr

    test = run_tool(
        "tools/test.py", str(config), str(checkpoint), "--work-dir", str(work_dir),
        "--dump", str(tmp_path / "predictions.pkl"), "--metrics-out", str(tmp_path / "test.json"),
    )  # fmt: skip
    assert test.returncode == 0, test.stderr[-3000:]
    assert "acc/top1" in test.stdout + test.stderr
    # The reported accuracy is the one the dumped predictions give, on all 6 toy clips.
    tested = json.loads((tmp_path / "test.json").read_text())
    predictions = pickle.loads((tmp_path / "predictions.pkl").read_bytes())
    assert len(predictions) == 6
    correct = [int(p["pred_score"].argmax()) == int(p["gt_label"]) for p in predictions]
    assert tested["acc/top1"] == pytest.approx(sum(correct) / len(correct))

    # Resuming a finished run with the same schedule trains no more (an early-stopped run would
    # otherwise train on); --test-after then tests the last checkpoint in the same process.
    stamp = checkpoint.stat().st_mtime_ns
    again = run_tool(
        "tools/train.py", str(config), "--work-dir", str(work_dir), "--resume",
        "--test-after", str(tmp_path / "metrics.json"),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished; not resuming" in again.stdout
    assert checkpoint.stat().st_mtime_ns == stamp and not (work_dir / "iter_2.pth").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(checkpoint)
    assert metrics["acc/top1"] == pytest.approx(tested["acc/top1"])  # same checkpoint, same clips

    # A longer schedule does train on from the last checkpoint.
    resume = run_tool(
        "tools/train.py",
        str(config),
        "--work-dir",
        str(work_dir),
        "--resume",
        "--cfg-options",
        "train_cfg.max_iters=2",
    )
    assert resume.returncode == 0, resume.stderr[-3000:]
    assert (work_dir / "iter_2.pth").is_file()
    assert f"Loads checkpoint by local backend from path: {checkpoint}" in resume.stdout


def test_missing_config_names_the_file(tmp_path):
    result = run_tool("tools/train.py", str(tmp_path / "nope.py"))
    assert result.returncode != 0
    assert "nope.py" in result.stderr
    assert "Config file not found" in result.stderr


def test_missing_checkpoint_names_the_file(tmp_path):
    config = write_config(tmp_path / "toy_tsn.py", toy_runner_config(str(tmp_path / "unused")))
    result = run_tool("tools/test.py", str(config), str(tmp_path / "missing.pth"))
    assert result.returncode != 0
    assert "missing.pth" in result.stderr


def test_amp_on_cpu_explains_it_needs_a_gpu(tmp_path):
    config = write_config(tmp_path / "toy_tsn.py", toy_runner_config(str(tmp_path / "unused")))
    result = run_tool("tools/train.py", str(config), "--amp")
    assert result.returncode != 0
    assert "--amp needs a CUDA GPU" in result.stderr


def test_unknown_default_scope_is_rejected(tmp_path):
    cfg = toy_runner_config(str(tmp_path / "unused"))
    cfg["default_scope"] = "mmfoo"
    config = write_config(tmp_path / "bad_scope.py", cfg)
    result = run_tool("tools/train.py", str(config))
    assert result.returncode != 0
    assert "default_scope='mmfoo'" in result.stderr
