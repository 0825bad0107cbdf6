"""The pieces of exact resuming: generator states, per-epoch seeds, worker seeds, the config."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch.utils.data import DataLoader, Dataset

from gm_plugins.engine import (
    capture_rng_states,
    derive_seed,
    enable_exact_resume,
    epoch_seed,
    restore_rng_states,
    seed_everything,
    seed_worker,
)
from gm_plugins.engine.runner import latest_checkpoint


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


def epoch_runner(work_dir, max_epochs: int, name: str, resume_from=None):
    """The toy TSN runner (tests/runner_configs.py) by epochs, validated, with early stopping
    whose ``min_delta`` no validation can beat, so every validation after the first counts."""
    from mmengine.runner import Runner

    import tests.toy_data  # noqa: F401  (registers ToyClipDataset)
    from tests.models.tiny_models import TINY_RESNET
    from tests.runner_configs import toy_runner_config

    cfg = Config(toy_runner_config(str(work_dir)))
    cfg.model.backbone = dict(TINY_RESNET)  # 128 channels after two stages, for speed
    cfg.model.cls_head.in_channels = 128
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=1)
    cfg.val_dataloader, cfg.val_cfg = cfg.test_dataloader, dict(type="ValLoop")
    cfg.val_evaluator = cfg.test_evaluator
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1, save_best="acc/top1")
    cfg.log_processor = dict(by_epoch=True)
    cfg.custom_hooks = [
        dict(type="EarlyStoppingHook", monitor="acc/top1", min_delta=10.0, patience=100)
    ]
    cfg.experiment_name = name
    cfg.resume, cfg.load_from = resume_from is not None, resume_from
    return Runner.from_cfg(enable_exact_resume(cfg))


def early_stopping(runner):
    from mmengine.hooks import EarlyStoppingHook

    (hook,) = [hook for hook in runner.hooks if isinstance(hook, EarlyStoppingHook)]
    return hook.wait_count, hook.best_score


@pytest.mark.slow
def test_a_resumed_run_validates_its_epoch_again_and_keeps_early_stopping_counts(
    tmp_path, restore_default_scope
):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two busy cores mostly wait for each other
    try:
        check_resumed_early_stopping(tmp_path)
    finally:
        torch.set_num_threads(threads)


def check_resumed_early_stopping(tmp_path) -> None:
    uninterrupted = epoch_runner(tmp_path / "a", max_epochs=3, name="uninterrupted")
    uninterrupted.train()
    assert early_stopping(uninterrupted)[0] == 2  # validations 2 and 3 did not improve
    # Killed any time after epoch_2.pth was saved (while validating epoch 2, or in epoch 3):
    resumed = epoch_runner(
        tmp_path / "b", max_epochs=3, name="resumed", resume_from=str(tmp_path / "a/epoch_2.pth")
    )
    resumed.train()
    assert early_stopping(resumed) == early_stopping(uninterrupted)
    expected = torch.load(tmp_path / "a/epoch_3.pth", weights_only=True)["state_dict"]
    actual = torch.load(tmp_path / "b/epoch_3.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
