"""Runner configs that train and test the tiny TSN on the toy dataset in seconds."""

from __future__ import annotations

import copy

from tests.stack_configs import TINY_TSN


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
