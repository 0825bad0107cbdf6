"""Our configs run under MMAction2's own tools/train.py and tools/test.py (the installed copies)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mmaction
import pytest

from tests.datasets.fake_cache import write_fake_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
MMACTION_TOOLS = Path(mmaction.__file__).parent / ".mim" / "tools"
DEMO_CONFIG = REPO_ROOT / "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"


def tiny_config(path: Path, data: Path, cache: Path) -> Path:
    """The demo config on a fake cache: 16 px windows of 6 flow fields, one short epoch."""
    dataset = dict(
        data_root=str(data),
        cache_root=str(cache),
        window=dict(start_stride=1.0, span=1.2, num_windows=None, frame_step=2, unit="seconds"),
    )
    path.write_text(
        f"_base_ = [{str(DEMO_CONFIG)!r}]\n"
        f"dataset = {dataset!r}\n"
        "train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, "
        "dataset=dataset)\n"
        "val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, "
        "dataset=dataset)\n"
        "test_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, "
        "dataset=dataset)\n"
        "train_cfg = dict(max_epochs=1)\n"
        "param_scheduler = []\n"
        "default_hooks = dict(logger=dict(interval=1))\n"
    )
    return path


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
