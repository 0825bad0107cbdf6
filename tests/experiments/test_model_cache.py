"""The model cache keys a model by its config, its starting checkpoint and its training data, and
reuses a checkpoint in place only when it was trained under the current key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.experiments import model_cache as mc

CONFIG = "configs/preprocess/seg.py"
CHECKPOINT = "work_dirs/seg/iter_10.pth"


def _clone(root: Path, seed: int = 2, annotations: str = "a b c") -> Path:
    """A repository with a segmentation config that trains on data/gm_preprocessing/mmseg."""
    (root / "configs/preprocess").mkdir(parents=True, exist_ok=True)
    (root / CONFIG).write_text(
        "data_root = 'data/gm_preprocessing/mmseg/'\n"
        "train_dataloader = dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict("
        "data_root=data_root, ann_file='splits/train.txt')))\n"
        "val_dataloader = dict(dataset=dict(data_root=data_root, ann_file='splits/val.txt'))\n"
    )
    _dataset(root, seed, annotations)
    return root


def _dataset(root: Path, seed: int, annotations: str = "a b c") -> None:
    data = root / "data/gm_preprocessing"
    (data / "mmseg/splits").mkdir(parents=True, exist_ok=True)
    meta = dict(generator_version="1.1", arguments=dict(seed=seed, prep_subjects=1200),
                complete=True)  # fmt: skip
    (data / "meta.json").write_text(json.dumps(meta))
    (data / "mmseg/splits/train.txt").write_text(annotations)
    (data / "mmseg/splits/val.txt").write_text("v")


def _train(root: Path, weights: bytes = b"trained weights") -> None:
    """What a training does: its key first, then its checkpoint."""
    mc.mark_training(CONFIG, CHECKPOINT, root)
    (root / CHECKPOINT).write_bytes(weights)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(mc.CACHE_ENV, str(tmp_path / "cache"))


def test_the_key_follows_the_training_data(tmp_path):
    root = _clone(tmp_path / "clone")
    key = mc.model_key(CONFIG, root)
    data = mc.training_data(Config.fromfile(str(root / CONFIG)), root)
    assert data["train_dataloader"]["dataset"] == "data/gm_preprocessing"  # through the wrapper
    assert data["train_dataloader"]["made_by"]["arguments"]["seed"] == 2
    _dataset(root, seed=0)  # the same folder made with another seed: other infants
    assert mc.model_key(CONFIG, root) != key
    _dataset(root, seed=2, annotations="a b d")  # other annotations
    assert mc.model_key(CONFIG, root) != key
    _dataset(root, seed=2)
    assert mc.model_key(CONFIG, root) == key


def test_a_model_whose_data_is_missing_has_no_key_and_is_not_restored(tmp_path):
    root = tmp_path / "clone"
    _clone(root)
    (root / "data/gm_preprocessing/meta.json").unlink()
    assert mc.model_key(CONFIG, root)  # no generator record: keyed by the rest
    shutil.rmtree(root / "data")
    with pytest.raises(FileNotFoundError, match="make that dataset first"):
        mc.model_key(CONFIG, root)
    assert not mc.restore_model(CONFIG, CHECKPOINT, root)


def test_a_checkpoint_of_another_key_in_place_is_set_aside_not_reused(tmp_path, capsys):
    root = _clone(tmp_path / "clone", seed=0)
    _train(root, b"trained on the old infants")
    assert mc.restore_model(CONFIG, CHECKPOINT, root)  # its key: kept
    _dataset(root, seed=2)  # the data changed under it
    assert not mc.restore_model(CONFIG, CHECKPOINT, root)  # to be trained again
    assert "trained under another key" in capsys.readouterr().out
    assert not (root / "work_dirs/seg").exists()
    assert (root / "work_dirs/seg.stale/iter_10.pth").read_bytes() == b"trained on the old infants"


def test_a_checkpoint_that_does_not_say_its_key_is_reused_only_if_the_cache_vouches(tmp_path):
    first, second = _clone(tmp_path / "first"), _clone(tmp_path / "second")
    _train(first)
    stored = mc.store_model(CONFIG, CHECKPOINT, first)
    assert json.loads((stored.parent / "model.json").read_text())["training_data"]
    # The same bytes, with no key file (trained before keys were written): the cache vouches.
    (second / CHECKPOINT).parent.mkdir(parents=True)
    (second / CHECKPOINT).write_bytes(b"trained weights")
    assert mc.restore_model(CONFIG, CHECKPOINT, second)
    assert mc.trained_key(CHECKPOINT, second) == mc.model_key(CONFIG, second)
    # Other bytes and no key: set aside, and the cache's model of the current key restored.
    mc.key_file(CHECKPOINT, second).unlink()
    (second / CHECKPOINT).write_bytes(b"something else")
    assert mc.restore_model(CONFIG, CHECKPOINT, second)
    assert (second / CHECKPOINT).read_bytes() == b"trained weights"
    assert (second / "work_dirs/seg.stale/iter_10.pth").read_bytes() == b"something else"


def test_the_cache_restores_only_the_model_of_the_same_data(tmp_path):
    first, second = _clone(tmp_path / "first", seed=0), _clone(tmp_path / "second", seed=2)
    _train(first)
    mc.store_model(CONFIG, CHECKPOINT, first)
    assert not mc.restore_model(CONFIG, CHECKPOINT, second)  # the same config, other infants
    assert not (second / CHECKPOINT).exists()
    _dataset(second, seed=0)
    assert mc.restore_model(CONFIG, CHECKPOINT, second)
    assert mc.trained_key(CHECKPOINT, second) == mc.model_key(CONFIG, first)
