"""The benchmark's baselines: C3DFeatures, LSTMFusion, and their configs (C3D, TSN, CNN + LSTM)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from torch import nn

from tests.models.tiny_models import TINY_RESNET, build, raw_batch, recognizer_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: The baselines built on MultiStreamRecognizer (configs/baselines holds others too, e.g. ST-GCN).
RGB_BASELINES = ("c3d", "tsn-rgb", "cnn-lstm")
BASELINE_CONFIGS = sorted(
    path for baseline in RGB_BASELINES for path in (CONFIGS / "baselines").glob(f"{baseline}_*.py")
)
#: The frame size of each dataset's cache: the demo's 64 px, the paper's 224 px.
DATASET_SIZES = {"gm-synthetic": 64, "gm3": 224}

TINY_C3D = dict(type="C3DFeatures", base_channels=4, norm_cfg=dict(type="BN3d"))
NO_FLIP = dict(type="TwoStreamDataPreprocessor", flip_prob=0.0)


# -- C3DFeatures --------------------------------------------------------------------------------


def test_c3d_has_the_papers_eight_convolutions_in_five_blocks():
    backbone = build(dict(type="C3DFeatures", base_channels=64))
    convs = [module for module in backbone.modules() if isinstance(module, nn.Conv3d)]
    assert [conv.out_channels for conv in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(conv.kernel_size == (3, 3, 3) and conv.padding == (1, 1, 1) for conv in convs)
    assert [len(block) for block in backbone.blocks] == [1, 1, 2, 2, 2]
    assert [pool.kernel_size for pool in backbone.pools] == [(1, 2, 2)] + [(2, 2, 2)] * 3
    assert not any(isinstance(module, nn.Linear) for module in backbone.modules())
    assert not any(isinstance(module, nn.BatchNorm3d) for module in backbone.modules())
    assert backbone.out_channels == 512


def test_c3d_returns_the_last_conv_map_of_small_clips():
    backbone = build(dict(TINY_C3D, in_channels=3)).eval()
    assert any(isinstance(module, nn.BatchNorm3d) for module in backbone.modules())
    with torch.no_grad():
        feature = backbone(torch.randn(2, 3, 6, 32, 32))
    # T: 6 -> 6 (pool1 keeps time) -> 3 -> 2 -> 1; space: 32 -> 16 -> 8 -> 4 -> 2.
    assert feature.shape == (2, 32, 1, 2, 2)
    assert (feature >= 0).all()  # the last conv's ReLU; no pooling after it


# Three pools halve time and four halve space, each rounding up: 17 -> 9 -> 5 -> 3 -> 2.
@pytest.mark.parametrize(
    ("clip", "feature_size"),
    [
        ((1, 16, 16), (1, 1, 1)),
        ((2, 17, 9), (1, 2, 1)),
        ((7, 64, 64), (1, 4, 4)),
        ((16, 24, 40), (2, 2, 3)),
    ],
)
def test_c3d_pools_round_up_so_any_clip_size_works(clip, feature_size):
    backbone = build(dict(TINY_C3D, in_channels=2)).eval()
    with torch.no_grad():
        feature = backbone(torch.randn(1, 2, *clip))
    assert feature.shape == (1, 32, *feature_size)


def test_c3d_checks_its_input():
    backbone = build(dict(TINY_C3D, in_channels=3))
    with pytest.raises(ValueError, match=r"expects \(N, 3, T, H, W\) clips, got \(2, 2, 4, 8, 8\)"):
        backbone(torch.zeros(2, 2, 4, 8, 8))
    with pytest.raises(ValueError, match="base_channels must be >= 1"):
        build(dict(type="C3DFeatures", base_channels=0))


# -- LSTMFusion ---------------------------------------------------------------------------------


def _lstm(**kwargs) -> nn.Module:
    cfg = dict(type="LSTMFusion", in_channels=dict(rgb=8), hidden_channels=6)
    return build({**cfg, **kwargs}).eval()


def test_lstm_fusion_gives_the_last_hidden_state_of_the_spatially_averaged_steps():
    torch.manual_seed(0)
    fusion = _lstm()
    maps = torch.randn(2, 8, 5, 3, 3)  # (N, C, T, H, W)
    with torch.no_grad():
        fused = fusion(dict(rgb=maps))
        outputs, _ = fusion.lstm(maps.mean(dim=(3, 4)).transpose(1, 2))  # (N, T, hidden)
    assert fused.shape == (2, 6) and fusion.out_channels == 6
    assert torch.allclose(fused, outputs[:, -1], atol=1e-6)
    # Spatial positions are averaged: shuffling them changes nothing.
    shuffled = maps.flatten(3)[..., torch.randperm(9)].view_as(maps)
    with torch.no_grad():
        assert torch.allclose(fusion(dict(rgb=shuffled)), fused, atol=1e-6)


def test_lstm_fusion_depends_on_time_order_where_pooling_does_not():
    torch.manual_seed(0)
    fusion = _lstm()
    pool = build(dict(type="PoolFusion", in_channels=dict(rgb=8)))
    maps = torch.randn(2, 8, 5, 3, 3)
    reversed_maps = maps.flip(2)
    with torch.no_grad():
        assert not torch.allclose(fusion(dict(rgb=maps)), fusion(dict(rgb=reversed_maps)))
        assert torch.allclose(pool(dict(rgb=maps)), pool(dict(rgb=reversed_maps)), atol=1e-6)
    # The state after step t only depends on steps 0..t: changing the last step changes it,
    # an LSTM stopped one step earlier does not see the change.
    changed = maps.clone()
    changed[:, :, -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(fusion(dict(rgb=maps)), fusion(dict(rgb=changed)))
        assert torch.allclose(
            fusion(dict(rgb=maps[:, :, :-1])), fusion(dict(rgb=changed[:, :, :-1]))
        )


def test_bidirectional_stacked_lstm_concatenates_both_directions_of_the_top_layer():
    torch.manual_seed(0)
    fusion = _lstm(num_layers=2, bidirectional=True, dropout=0.2)
    assert fusion.lstm.num_layers == 2 and fusion.lstm.dropout == 0.2
    maps = torch.randn(3, 8, 4, 2, 2)
    with torch.no_grad():
        fused = fusion(dict(rgb=maps))
        outputs, _ = fusion.lstm(maps.mean(dim=(3, 4)).transpose(1, 2))
    assert fused.shape == (3, 12) and fusion.out_channels == 12
    assert torch.allclose(fused[:, :6], outputs[:, -1, :6], atol=1e-6)  # forward: last step
    assert torch.allclose(fused[:, 6:], outputs[:, 0, 6:], atol=1e-6)  # backward: first step


def test_lstm_fusion_concatenates_two_streams_step_by_step():
    fusion = build(dict(type="LSTMFusion", in_channels=dict(rgb=4, flow=2), hidden_channels=3))
    assert fusion.lstm.input_size == 6
    out = fusion(dict(flow=torch.randn(2, 2, 3, 4, 4), rgb=torch.randn(2, 4, 3, 4, 4)))
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match=r"time steps differ: \{'rgb': 3, 'flow': 2\}"):
        fusion(dict(rgb=torch.randn(2, 4, 3, 4, 4), flow=torch.randn(2, 2, 2, 4, 4)))


def test_lstm_fusion_errors_say_what_to_fix():
    fusion = _lstm()
    with pytest.raises(ValueError, match=r"needs a time axis.*set rgb_input='segments2d'"):
        fusion(dict(rgb=torch.randn(2, 8, 3, 3)))
    with pytest.raises(ValueError, match=r"set fusion\.in_channels\.rgb=4"):
        fusion(dict(rgb=torch.randn(2, 4, 5, 3, 3)))
    with pytest.raises(ValueError, match=r"configured for streams \['rgb'\] but received"):
        fusion(dict(flow=torch.randn(2, 8, 5, 3, 3)))
    with pytest.raises(ValueError, match="acts between stacked LSTM layers"):
        _lstm(dropout=0.5)
    with pytest.raises(TypeError, match="LSTMFusion needs in_channels"):
        build(dict(type="LSTMFusion", in_channels=None))


# -- the baselines as tiny recognizers -----------------------------------------------------------


TINY_BASELINES = {
    "c3d": (
        TINY_C3D,
        dict(type="PoolFusion", in_channels=dict(rgb=32)),
        32,
        "clip3d",
        ("rgb_backbone.blocks.0.0.conv.weight",),
    ),
    "tsn": (
        TINY_RESNET,
        dict(type="PoolFusion", in_channels=dict(rgb=128)),
        128,
        "segments2d",
        ("rgb_backbone.conv1.conv.weight",),
    ),
    "cnn-lstm": (
        TINY_RESNET,
        dict(type="LSTMFusion", in_channels=dict(rgb=128), hidden_channels=16),
        16,
        "segments2d",
        ("rgb_backbone.conv1.conv.weight", "fusion.lstm.weight_ih_l0", "fusion.lstm.weight_hh_l0"),
    ),
}


@pytest.mark.parametrize("name", sorted(TINY_BASELINES))
def test_tiny_baseline_trains(name):
    backbone, fusion, width, layout, watched = TINY_BASELINES[name]
    cfg = recognizer_config(
        backbone, None, fusion, head_channels=width, rgb_input=layout, data_preprocessor=NO_FLIP
    )
    torch.manual_seed(0)
    model = build(cfg)
    model.init_weights()
    data = raw_batch(batch_size=4, frames=4, size=32, with_flow=False)

    model.train()
    batch = model.data_preprocessor(data, training=True)
    model(**batch, mode="loss")["loss_cls"].backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient: {param_name}"
    model.zero_grad()

    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-2))
    before = {key: model.state_dict()[key].clone() for key in (*watched, "cls_head.fc_cls.weight")}
    losses = [model.train_step(data, optim_wrapper)["loss"].item() for _ in range(6)]
    assert losses[-1] < losses[0], losses
    for key, value in before.items():
        assert not torch.equal(value, model.state_dict()[key]), f"{key} did not change"

    model.eval()
    with torch.no_grad():
        predictions = model(**model.data_preprocessor(data), mode="predict")
    assert [prediction.pred_score.shape for prediction in predictions] == [(3,)] * 4


# -- configs ------------------------------------------------------------------------------------


def _rgb_frames(pipeline: list[dict]) -> int:
    (load,) = [step for step in pipeline if step["type"] == "LoadCachedWindow"]
    return load.get("rgb_frames", 1)


def _packed_streams(pipeline: list[dict]) -> tuple[str, ...]:
    """The streams a window pipeline packs: the packer's, else all that the loader reads."""
    (load,) = [step for step in pipeline if step["type"] == "LoadCachedWindow"]
    (pack,) = [step for step in pipeline if step["type"] == "PackStreamInputs"]
    return tuple(pack.get("streams") or load.get("streams", ("rgb", "flow")))


def test_every_baseline_has_a_demo_and_a_full_size_config():
    names = {path.name for path in BASELINE_CONFIGS}
    for baseline in RGB_BASELINES:
        assert any(n.startswith(baseline) and n.endswith("_demo_gm-synthetic.py") for n in names)
        assert any(n.startswith(baseline) and n.endswith("_12x30f_gm3.py") for n in names)


@pytest.mark.slow
@pytest.mark.parametrize("path", BASELINE_CONFIGS, ids=lambda path: path.stem)
def test_baseline_config_builds_and_predicts_on_its_input_size(path):
    cfg = Config.fromfile(str(path))
    assert cfg.model.rgb_backbone.get("pretrained") is None  # nothing is downloaded
    loaders = (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader)
    frames = {_rgb_frames(loader.dataset.pipeline) for loader in loaders}
    streams = {_packed_streams(loader.dataset.pipeline) for loader in loaders}
    assert len(frames) == 1 and streams == {("rgb",)}  # trained and tested on the same input
    (frames,) = frames
    size = DATASET_SIZES[path.stem.rpartition("_")[2]]
    assert 1 < frames <= 7  # a window has 7 cached frames

    model = build(cfg.model).eval()
    assert model.streams == ("rgb",)
    data = raw_batch(batch_size=1, frames=frames, size=size, with_flow=False)
    with torch.no_grad():
        predictions = model(**model.data_preprocessor(data), mode="predict")
    assert predictions[0].pred_score.shape == (3,)
    assert torch.isclose(predictions[0].pred_score.sum(), torch.tensor(1.0), atol=1e-5)


@pytest.mark.parametrize(
    "name, layout, feature_shape, fused_width",
    [
        ("c3d_base64.py", "clip3d", (512, 1, 4, 4), 512),
        ("c3d_base16.py", "clip3d", (128, 1, 4, 4), 128),
        ("tsn-rgb_r50.py", "segments2d", (2048, 6, 2, 2), 2048),
        ("tsn-rgb_r18-3stage.py", "segments2d", (256, 6, 4, 4), 256),
        ("cnn-lstm_r50.py", "segments2d", (2048, 6, 2, 2), 512),
        ("cnn-lstm_r18-3stage.py", "segments2d", (256, 6, 4, 4), 128),
    ],
)
def test_baseline_model_config_builds_offline_and_predicts(
    name, layout, feature_shape, fused_width
):
    cfg = Config.fromfile(str(CONFIGS / "_base_" / "models" / name)).model
    assert cfg.rgb_backbone.get("pretrained") is None and cfg.get("flow_backbone") is None
    model = build(cfg).eval()
    assert model.stream_layouts == {"rgb": layout}
    data = model.data_preprocessor(raw_batch(batch_size=1, frames=6, size=64, with_flow=False))
    with torch.no_grad():
        maps = model(**data, mode="tensor", stage="backbone")
        fused = model(**data, mode="tensor", stage="fusion")
        predictions = model(**data, mode="predict")
    assert maps["rgb"].shape == (1, *feature_shape)
    assert fused.shape == (1, fused_width)
    assert predictions[0].pred_score.shape == (3,)
