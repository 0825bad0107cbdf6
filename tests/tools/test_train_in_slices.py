"""tools/misc/train_in_slices.py: a slice keeps its newest complete checkpoint in the
repository, the next slice resumes from it on a machine that has nothing, and a budget stops
training cleanly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.runner_configs import REPO_ROOT


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "train_in_slices", REPO_ROOT / "tools/misc/train_in_slices.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


slices = load_tool()


def test_the_newest_complete_checkpoint_is_the_one_last_checkpoint_names(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    assert slices.newest_checkpoint(work) is None
    for name in ("iter_500.pth", "iter_1000.pth", "iter_1500.pth"):
        (work / name).write_bytes(name.encode())
    assert slices.newest_checkpoint(work).name == "iter_1500.pth"
    # iter_1500 may be half-written: mmengine names a checkpoint only once it is complete
    (work / "last_checkpoint").write_text(str(work / "iter_1000.pth"))
    assert slices.newest_checkpoint(work).name == "iter_1000.pth"
    assert slices.progress(work / "epoch_12.pth") == 12 and slices.progress(None) == 0


def test_a_kept_checkpoint_travels_to_a_fresh_machine_and_is_replaced_by_the_next_slice(tmp_path):
    first, keep_dir = tmp_path / "machine1", tmp_path / "repo" / "zoo" / "_training" / "m"
    first.mkdir()
    (first / "iter_500.pth").write_bytes(b"state at 500")
    (first / "last_checkpoint").write_text(str(first / "iter_500.pth"))
    kept = slices.keep(first, keep_dir)
    assert kept.read_bytes() == b"state at 500"

    fresh = tmp_path / "machine2" / "work_dirs" / "m"
    restored = slices.restore(keep_dir, fresh)
    assert restored.read_bytes() == b"state at 500"
    # mmengine's --resume finds it through last_checkpoint
    assert Path((fresh / "last_checkpoint").read_text()) == restored.resolve()

    (fresh / "iter_1000.pth").write_bytes(b"state at 1000")
    (fresh / "last_checkpoint").write_text(str(fresh / "iter_1000.pth"))
    slices.keep(fresh, keep_dir)
    assert sorted(p.name for p in keep_dir.glob("*.pth")) == ["iter_1000.pth"]
    # a machine behind the kept checkpoint takes it; one further on keeps its own
    assert slices.restore(keep_dir, first).read_bytes() == b"state at 1000"
    (first / "iter_1500.pth").write_bytes(b"state at 1500")
    (first / "last_checkpoint").write_text(str(first / "iter_1500.pth"))
    assert slices.restore(keep_dir, first).read_bytes() == b"state at 1500"


def test_a_budget_interrupts_a_training_that_would_not_end_and_a_short_one_finishes(tmp_path):
    marker = tmp_path / "interrupted"
    forever = [sys.executable, "-c", (
        "import time, pathlib\n"
        "try:\n    while True: time.sleep(0.05)\n"
        f"except KeyboardInterrupt:\n    pathlib.Path({str(marker)!r}).write_text('clean')\n"
    )]  # fmt: skip
    assert slices.train_for(forever, minutes=0.1, env={}) == "stopped"
    assert marker.read_text() == "clean"  # it got SIGINT, as mmengine does, not SIGKILL
    assert slices.train_for([sys.executable, "-c", "pass"], minutes=5, env={}) == "finished"


def test_a_model_started_from_a_completed_one_gets_its_kept_weights(tmp_path, monkeypatch):
    from mmengine.config import Config

    monkeypatch.setattr(slices, "ROOT", tmp_path)
    cfg = Config(dict(load_from="work_dirs/base-model/epoch_20.pth"))
    keep_root = tmp_path / "zoo" / "_training"
    (keep_root / "base-model").mkdir(parents=True)
    (keep_root / "base-model" / "README.txt").write_text("not a checkpoint")
    (keep_root / "base-model" / "base-model-0123abcd.pth").write_bytes(b"stripped weights")
    restored = slices.restore_start(cfg, keep_root)
    assert restored == tmp_path / "work_dirs/base-model/epoch_20.pth"
    assert restored.read_bytes() == b"stripped weights"
    assert slices.restore_start(cfg, keep_root) is None  # in place now: left alone
    missing = Config(dict(load_from="work_dirs/other/epoch_5.pth"))
    with pytest.raises(SystemExit, match="train or restore that model first"):
        slices.restore_start(missing, keep_root)
