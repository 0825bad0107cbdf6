"""The OpenMMLab stack works on this torch: compiled ops, one model of each library, checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch
from mmengine.config import ConfigDict

import tests.toy_data  # noqa: F401  (registers ToyClipDataset)
from tests.runner_configs import toy_runner_config
from tests.stack_configs import TINY_POSE, TINY_TSN, TINY_UNET


def test_mmcv_compiled_ops_run_on_cpu():
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets.shape == (2, 5)


def test_mmaction_recognizer_forward_from_config():
    from mmaction.registry import MODELS
    from mmaction.structures import ActionDataSample

    from gm_plugins.compat import library_scope

    with library_scope("mmaction"):
        model = MODELS.build(ConfigDict(copy.deepcopy(TINY_TSN))).eval()
    inputs = [torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    samples = [ActionDataSample().set_gt_label(0) for _ in range(2)]
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples))
        out = model(**data, mode="predict")
    assert len(out) == 2
    assert out[0].pred_score.shape == (3,)
    assert torch.allclose(out[0].pred_score.sum(), torch.tensor(1.0), atol=1e-5)


def test_mmseg_model_forward_from_config():
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from gm_plugins.compat import library_scope

    with library_scope("mmseg"):
        model = MODELS.build(ConfigDict(copy.deepcopy(TINY_UNET))).eval()
        image = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
        with torch.no_grad():
            data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]))
            out = model(**data, mode="predict")
    assert out[0].seg_logits.data.shape == (2, 64, 64)
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_mmpose_model_forward_from_config():
    from mmpose.registry import MODELS

    from gm_plugins.compat import library_scope

    with library_scope("mmpose"):
        model = MODELS.build(ConfigDict(copy.deepcopy(TINY_POSE))).eval()
        with torch.no_grad():
            heatmaps = model(torch.rand(2, 3, 64, 64), None, mode="tensor")
    assert heatmaps.shape == (2, 17, 16, 16)


@pytest.mark.slow
def test_runner_checkpoint_loads_back_for_test_and_resume(tmp_path):
    from mmengine.runner import Runner

    work_dir = tmp_path / "run"
    Runner.from_cfg(_config(toy_runner_config(str(work_dir), max_iters=1))).train()
    checkpoint = work_dir / "iter_1.pth"
    assert checkpoint.is_file()

    tester_cfg = toy_runner_config(str(tmp_path / "test"))
    tester_cfg["load_from"] = str(checkpoint)
    metrics = Runner.from_cfg(_config(tester_cfg)).test()
    assert "acc/top1" in metrics

    resumed_cfg = toy_runner_config(str(work_dir), max_iters=2)
    resumed_cfg.update(resume=True, load_from=str(checkpoint))
    resumed = Runner.from_cfg(_config(resumed_cfg))
    resumed.train()
    assert resumed.iter == 2
    assert (work_dir / "iter_2.pth").is_file()
    history = resumed.message_hub.get_scalar("train/loss")
    assert len(history.data[0]) == 2  # the loss of iteration 1 came back with the checkpoint


def _config(cfg_dict: dict):
    from mmengine.config import Config

    return Config(cfg_dict)
