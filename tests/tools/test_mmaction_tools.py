"""Our configs run under MMAction2's own tools/train.py and tools/test.py (the installed copies)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mmaction
import pytest

from tests.datasets.fake_cache import write_fake_dataset
from tests.runner_configs import REPO_ROOT
from tests.runner_configs import tiny_demo_config as tiny_config

MMACTION_TOOLS = Path(mmaction.__file__).parent / ".mim" / "tools"


@pytest.mark.slow
def test_demo_config_trains_and_tests_with_mmaction_tools(tmp_path):
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=4)
    config = tiny_config(tmp_path / "tiny_demo.py", data, cache)
    work_dir = tmp_path / "work"
    train_tool = str(MMACTION_TOOLS / "train.py")
    train = subprocess.run(
        [sys.executable, train_tool, str(config), "--work-dir", str(work_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    checkpoint = work_dir / "epoch_1.pth"
    assert checkpoint.is_file()
    test = subprocess.run(
        [sys.executable, str(MMACTION_TOOLS / "test.py"), str(config), str(checkpoint),
         "--work-dir", str(work_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert test.returncode == 0, test.stderr[-3000:]
    assert "subject/accuracy" in test.stdout + test.stderr
