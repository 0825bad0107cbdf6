"""Runner configs that train and test tiny models (toy TSN, demo two-stream) in seconds."""

from __future__ import annotations

import copy
from pathlib import Path

from tests.stack_configs import TINY_TSN

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "configs/gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"


def toy_runner_config(work_dir: str, max_iters: int = 1) -> dict:
    """A complete mmaction runner config (dict) for ``mmengine.runner.Runner``."""
    loader = dict(
        batch_size=2,
        num_workers=0,
        sampler=dict(type="DefaultSampler", shuffle=False),
        dataset=dict(type="ToyClipDataset", length=6),
    )
    return dict(
        default_scope="mmaction",
        custom_imports=dict(imports=["gm_plugins", "tests.toy_data"], allow_failed_imports=False),
        work_dir=work_dir,
        model=copy.deepcopy(TINY_TSN),
        train_dataloader=copy.deepcopy(loader),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=1000),
        optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-3)),
        test_dataloader=copy.deepcopy(loader),
        test_cfg=dict(type="TestLoop"),
        test_evaluator=dict(type="AccMetric"),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=1, by_epoch=False),
            logger=dict(type="LoggerHook", interval=1),
        ),
        log_processor=dict(by_epoch=False),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
        randomness=dict(seed=0),
        log_level="WARNING",
    )


def tiny_demo_config(path: Path, data: Path, cache: Path) -> Path:
    """The demo two-stream config on a fake cache (tests/datasets/fake_cache.py): 16 px windows
    of 6 flow fields, one short epoch, no loader workers. Written to ``path``; returns it."""
    dataset = dict(
        data_root=str(data),
        cache_root=str(cache),
        window=dict(start_stride=1.0, span=1.2, num_windows=None, frame_step=2, unit="seconds"),
    )
    loader = "dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dataset)"
    path.write_text(
        f"_base_ = [{str(DEMO_CONFIG)!r}]\n"
        f"dataset = {dataset!r}\n"
        f"train_dataloader = {loader}\nval_dataloader = {loader}\ntest_dataloader = {loader}\n"
        "train_cfg = dict(max_epochs=1)\nparam_scheduler = []\n"
        "default_hooks = dict(logger=dict(interval=1))\n"
    )
    return path
