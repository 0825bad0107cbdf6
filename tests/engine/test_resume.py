"""A training run SIGKILLed inside an epoch and resumed with tools/train.py --resume ends with
the same weights, best checkpoint and test metrics as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.datasets.fake_cache import write_fake_dataset
from tests.engine.resume_runs import (
    finish,
    kill_when,
    resumable_demo_config,
    start,
    train_iteration,
)


def train(config: Path, work_dir: Path, log: Path):
    return start(
        "tools/train.py", str(config), "--work-dir", str(work_dir), "--resume",
        "--test-after", str(work_dir / "test_metrics.json"), log=log,
    )  # fmt: skip


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{first.name}: {len(different)} tensors differ, e.g. {different[:3]}"


@pytest.mark.slow
def test_a_run_killed_inside_an_epoch_resumes_to_the_same_result(tmp_path):
    data, cache = write_fake_dataset(tmp_path / "fake", per_class=4)
    config = resumable_demo_config(tmp_path / "tiny.py", data, cache, max_epochs=2)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    reference.mkdir(), resumed.mkdir()

    uninterrupted = train(config, reference, reference / "out.log")  # side by side
    killed = train(config, resumed, resumed / "out.log")
    kill_when(killed, resumed / "out.log", train_iteration(epoch=2, iteration=2))
    assert (resumed / "epoch_1.pth").is_file()
    assert not (resumed / "epoch_2.pth").exists(), "killed too late: epoch 2 had finished"
    finish(train(config, resumed, resumed / "out.log"), resumed / "out.log")
    finish(uninterrupted, reference / "out.log")

    log = (resumed / "out.log").read_text()
    assert "Validating epoch 1 again" in log  # epoch_1.pth was saved before epoch 1's validation
    assert_same_weights(reference / "epoch_2.pth", resumed / "epoch_2.pth")
    best = sorted(path.name for path in reference.glob("best_*.pth"))
    assert len(best) == 1 and sorted(path.name for path in resumed.glob("best_*.pth")) == best
    assert_same_weights(reference / best[0], resumed / best[0])
    expected = json.loads((reference / "test_metrics.json").read_text())
    actual = json.loads((resumed / "test_metrics.json").read_text())
    assert Path(actual.pop("checkpoint")).name == Path(expected.pop("checkpoint")).name
    assert actual == expected
