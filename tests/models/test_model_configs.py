"""The `_base_` model configs build without downloads, run, and the paper model trains a step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from tests.models.tiny_models import build, raw_batch

MODEL_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "_base_" / "models"
PAPER_CONFIG = MODEL_CONFIGS / "two-stream_r50-concat-fusion.py"


def _model_cfg(name: str):
    return Config.fromfile(str(MODEL_CONFIGS / name)).model


@pytest.mark.parametrize(
    "name, streams, flow_fields",
    [
        ("two-stream_r50-concat-fusion.py", ("rgb", "flow"), 6),
        ("two-stream_r50-late-fusion.py", ("rgb", "flow"), 6),
        ("spatial-only_r50.py", ("rgb",), 6),
        ("temporal-only_r50.py", ("flow",), 6),
        ("two-stream_r18-3stage-concat-fusion.py", ("rgb", "flow"), 6),
        ("two-stream_r18-3stage-late-fusion.py", ("rgb", "flow"), 6),
        ("spatial-only_r18-3stage.py", ("rgb",), 6),
        ("temporal-only_r18-3stage.py", ("flow",), 6),
    ],
)
def test_model_config_builds_offline_and_predicts(name, streams, flow_fields):
    cfg = _model_cfg(name)
    for stream in streams:
        assert cfg[f"{stream}_backbone"]["pretrained"] is None  # nothing is downloaded
    model = build(cfg).eval()
    assert model.streams == streams
    data = raw_batch(batch_size=1, frames=1, flow_fields=flow_fields, size=64)
    with torch.no_grad():
        predictions = model(**model.data_preprocessor(data), mode="predict")
    assert predictions[0].pred_score.shape == (3,)
    assert torch.isclose(predictions[0].pred_score.sum(), torch.tensor(1.0), atol=1e-5)


def test_paper_model_matches_the_paper_architecture():
    model = build(_model_cfg(PAPER_CONFIG.name))
    assert model.rgb_backbone.conv1.conv.in_channels == 3
    assert model.flow_backbone.conv1.conv.in_channels == 12  # L = 6 flow fields, x and y
    assert (model.fusion.fuse_conv.in_channels, model.fusion.out_channels) == (4096, 2048)
    assert model.cls_head.fc_cls.in_features == 2048
    assert model.cls_head.fc_cls.out_features == 3
    feature_maps = model(
        dict(rgb=torch.zeros(1, 1, 3, 224, 224), flow=torch.zeros(1, 6, 2, 224, 224)),
        mode="tensor",
    )
    assert feature_maps["rgb"].shape == feature_maps["flow"].shape == (1, 2048, 7, 7)


def test_paper_model_trains_one_iteration_at_224_px():
    torch.manual_seed(0)
    model = build(_model_cfg(PAPER_CONFIG.name))
    model.init_weights()
    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    watched = ("rgb_backbone.conv1.conv.weight", "flow_backbone.conv1.conv.weight")
    watched += ("fusion.fuse_conv.weight", "cls_head.fc_cls.weight")
    before = {name: model.state_dict()[name].clone() for name in watched}

    log_vars = model.train_step(raw_batch(batch_size=2, flow_fields=6, size=224), optim_wrapper)

    assert torch.isfinite(torch.as_tensor(log_vars["loss"]))
    for name in watched:
        assert not torch.equal(before[name], model.state_dict()[name]), f"{name} did not change"
