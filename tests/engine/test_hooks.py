"""The pieces of exact resuming: generator states, per-epoch seeds, worker seeds, the config."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch.utils.data import DataLoader, Dataset

from gm_plugins.apis.runner import latest_checkpoint
from gm_plugins.engine import (
    capture_rng_states,
    derive_seed,
    enable_exact_resume,
    epoch_seed,
    restore_rng_states,
    seed_everything,
    seed_worker,
)


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_restored_states_repeat_every_generator():
    seed_everything(5)
    draws()
    states = capture_rng_states()
    expected = draws()
    seed_everything(6)
    restore_rng_states(states)
    assert draws() == expected


def test_states_survive_a_weights_only_checkpoint():
    seed_everything(1)
    buffer = io.BytesIO()
    torch.save(dict(states=capture_rng_states()), buffer)
    expected = draws()
    buffer.seek(0)
    restore_rng_states(torch.load(buffer, weights_only=True)["states"])
    assert draws() == expected


def test_seeds_depend_on_every_part():
    assert derive_seed(1, 2) == derive_seed(1, 2)
    assert len({derive_seed(1, 2), derive_seed(2, 1), derive_seed(1, 3), derive_seed(1)}) == 4
    assert epoch_seed(-3, 0) == epoch_seed(-3, 0) != epoch_seed(-3, 1)
    assert epoch_seed(7, 1, rank=0) != epoch_seed(7, 1, rank=1)
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(-1)


class RandomDraws(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple:
        return draws()


def epoch_of_draws(loader: DataLoader, main_seed: int) -> list:
    seed_everything(main_seed)
    return [tuple(float(v) for v in batch) for batch in loader]


@pytest.mark.slow
def test_workers_follow_the_main_process_seed_whatever_ran_before():
    loader = DataLoader(RandomDraws(), batch_size=None, num_workers=2, worker_init_fn=seed_worker)
    first = epoch_of_draws(loader, main_seed=1)
    second = epoch_of_draws(loader, main_seed=2)
    again = epoch_of_draws(loader, main_seed=1)
    assert first == again  # a resumed epoch starts its workers as the original did
    assert first != second  # and another epoch's workers draw other numbers
    assert len(set(first)) == len(first)  # the two workers do not repeat each other


def test_enable_exact_resume_adds_the_hook_once_and_restarts_workers():
    cfg = Config(
        dict(
            custom_hooks=[dict(type="EarlyStoppingHook", monitor="loss")],
            train_dataloader=dict(num_workers=2, persistent_workers=True),
            val_dataloader=dict(num_workers=2, persistent_workers=True),
        )
    )
    enable_exact_resume(enable_exact_resume(cfg))
    assert [hook["type"] for hook in cfg.custom_hooks] == [
        "EarlyStoppingHook",
        "mmaction.ExactResumeHook",
    ]
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.train_dataloader.worker_init_fn == dict(type="seed_worker")
    assert cfg.val_dataloader.persistent_workers is True  # deterministic: left alone


def test_a_config_without_workers_or_with_its_own_worker_init_fn_keeps_its_loader():
    own = dict(type="my_init_fn")
    cfg = Config(dict(train_dataloader=dict(num_workers=1, worker_init_fn=own)))
    enable_exact_resume(cfg)
    assert cfg.train_dataloader.worker_init_fn == own
    single = enable_exact_resume(Config(dict(train_dataloader=dict(num_workers=0))))
    assert "worker_init_fn" not in single.train_dataloader


def test_latest_checkpoint_survives_a_kill_while_last_checkpoint_was_written(tmp_path):
    assert latest_checkpoint(tmp_path) is None  # nothing to resume: train from scratch
    for name in ("epoch_2.pth", "epoch_10.pth", "best_acc_epoch_10.pth"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_2.pth"))
    assert latest_checkpoint(tmp_path) == str(tmp_path / "epoch_2.pth")
    (tmp_path / "last_checkpoint").write_text("")  # truncated by the kill
    assert latest_checkpoint(tmp_path) == str(tmp_path / "epoch_10.pth")
