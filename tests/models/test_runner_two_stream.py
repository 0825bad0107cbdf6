"""A Runner trains, validates and tests the two-stream recognizer with SubjectMetric."""

from __future__ import annotations

import copy
import json

import torch
from mmaction.registry import DATASETS
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from torch.utils.data import Dataset

from gm_plugins.datasets.subjects import GM_CLASSES
from tests.models.tiny_models import TINY_RESNET, recognizer_config


@DATASETS.register_module(force=True)
class ToyTwoStreamWindows(Dataset):
    """``num_subjects`` infants x ``windows_per_subject`` windows packed like the GM dataset."""

    metainfo = dict(classes=GM_CLASSES)

    def __init__(self, num_subjects: int = 3, windows_per_subject: int = 2, **kwargs) -> None:
        self.num_subjects, self.windows_per_subject = num_subjects, windows_per_subject

    def __len__(self) -> int:
        return self.num_subjects * self.windows_per_subject

    def __getitem__(self, index: int) -> dict:
        subject, window = divmod(index, self.windows_per_subject)
        generator = torch.Generator().manual_seed(index)
        rgb = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=generator)
        flow = torch.rand(3, 2, 32, 32, generator=generator) * 2 - 1
        sample = ActionDataSample(
            metainfo=dict(subject_id=f"infant{subject}", window_index=window)
        ).set_gt_label(subject % len(GM_CLASSES))
        return dict(inputs=dict(rgb=rgb, flow=flow), data_samples=sample)


def _runner_config(work_dir: str, out_file: str) -> Config:
    fusion = dict(type="ConcatConvFusion", in_channels=dict(rgb=128, flow=128), out_channels=64)
    model = recognizer_config(TINY_RESNET, dict(TINY_RESNET, in_channels=6), fusion, 64)
    loader = dict(
        batch_size=2,
        num_workers=0,
        sampler=dict(type="DefaultSampler", shuffle=False),
        collate_fn=dict(type="pseudo_collate"),
        dataset=dict(type="ToyTwoStreamWindows"),
    )
    evaluator = dict(type="SubjectMetric", out_file=out_file)
    return Config(
        dict(
            default_scope="mmaction",
            custom_imports=dict(imports=["gm_plugins"], allow_failed_imports=False),
            work_dir=work_dir,
            model=model.to_dict(),
            train_dataloader=copy.deepcopy(loader),
            val_dataloader=copy.deepcopy(loader),
            test_dataloader=copy.deepcopy(loader),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=2, val_interval=2),
            val_cfg=dict(type="ValLoop"),
            test_cfg=dict(type="TestLoop"),
            val_evaluator=evaluator,
            test_evaluator=evaluator,
            optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-3)),
            default_hooks=dict(
                checkpoint=dict(
                    type="CheckpointHook", interval=2, by_epoch=False, save_best="auto", rule="less"
                ),
                logger=dict(type="LoggerHook", interval=1),
            ),
            log_processor=dict(by_epoch=False),
            env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
            randomness=dict(seed=0),
            log_level="WARNING",
        )
    )


def test_runner_trains_validates_and_tests_with_subject_metric(tmp_path):
    from mmengine.runner import Runner

    out_file = tmp_path / "subjects.json"
    runner = Runner.from_cfg(_runner_config(str(tmp_path / "run"), str(out_file)))
    runner.train()
    assert list((tmp_path / "run").glob("best_window_cross_entropy_iter_2.pth"))

    metrics = runner.test()
    assert metrics["subject/num_subjects"] == 3 and metrics["window/num_windows"] == 6
    assert len(metrics["subject/confusion_matrix"]) == 3
    subjects = json.loads(out_file.read_text())["subjects"]
    assert [s["subject_id"] for s in subjects] == ["infant0", "infant1", "infant2"]
    assert [s["label_name"] for s in subjects] == list(GM_CLASSES)
