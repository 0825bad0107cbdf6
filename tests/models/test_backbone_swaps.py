"""Any backbone in either stream: library wrappers, fitted stems, and the backbone-swap configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from mmcv.cnn import ConvModule
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from torch import nn

from gm_plugins.models.backbones import (
    TimmBackbone,
    TorchvisionBackbone,
    build_library_backbone,
    cross_modality_average,
    replace_first_conv,
)
from tests.models.tiny_models import TINY_HEAD, TINY_RESNET, TINY_RESNET3D, build, raw_batch

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEMO = CONFIGS / "gm" / "two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"
BACKBONE_CONFIGS = sorted((CONFIGS / "backbones").glob("*.py"))
TINY_SHAPES = dict(rgb=(1, 3, 32, 32), flow=(2, 2, 32, 32))


# -- torchvision and timm models as feature extractors ------------------------------------------


def test_torchvision_models_lose_pooling_and_classifier_and_keep_their_weight_names():
    torch.manual_seed(0)
    network = torchvision.models.resnet18()
    backbone = build_library_backbone(dict(type="torchvision.resnet18"))
    assert isinstance(backbone, TorchvisionBackbone)
    assert not hasattr(backbone, "fc") and not hasattr(backbone, "avgpool")
    trunk_weights = {k: v for k, v in network.state_dict().items() if not k.startswith("fc.")}
    backbone.load_state_dict(trunk_weights)  # strict: the same names, nothing missing
    x = torch.randn(2, 3, 32, 32)
    expected = nn.Sequential(*list(network.children())[:-2]).eval()(x)
    assert torch.allclose(backbone.eval()(x), expected, atol=1e-6)

    mobilenet = build_library_backbone(dict(type="torchvision.mobilenet_v3_small"))
    assert mobilenet.layer_names == ["features"]
    assert mobilenet(x).shape == (2, 576, 1, 1)
    googlenet = build_library_backbone(dict(type="torchvision.googlenet", init_weights=True))
    assert not any(name.startswith("aux") for name in googlenet.layer_names)


def test_unknown_and_unsupported_torchvision_models_are_explained():
    with pytest.raises(ValueError, match="torchvision has no model 'resnet81'; did you mean"):
        build_library_backbone(dict(type="torchvision.resnet81"))
    with pytest.raises(ValueError, match=r"vit_b_16 is a transformer.*timm"):
        build_library_backbone(dict(type="torchvision.vit_b_16"))


def test_timm_models_give_feature_maps_without_unused_parameters():
    backbone = build_library_backbone(dict(type="timm.mobilenetv3_small_100"))
    assert isinstance(backbone, TimmBackbone)
    fmap = backbone(torch.randn(2, 3, 32, 32))
    assert fmap.shape == (2, 576, 1, 1)
    fmap.sum().backward()
    # forward_features would leave the head's conv unused, which DistributedDataParallel rejects
    assert all(param.grad is not None for param in backbone.parameters())
    cut = build_library_backbone(dict(type="timm.resnet18", out_indices=(3,)))
    assert cut(torch.randn(1, 3, 32, 32)).shape == (1, 256, 2, 2)  # like r18-3stage
    with pytest.raises(ValueError, match="timm has no model 'mobilenetv3_smal_100'; did you"):
        build_library_backbone(dict(type="timm.mobilenetv3_smal_100"))


def test_channels_last_timm_maps_are_made_channels_first():
    swin = dict(img_size=32, window_size=2, embed_dim=16, depths=(1, 1), num_heads=(1, 2))
    backbone = build_library_backbone(dict(type="timm.swin_tiny_patch4_window7_224", **swin))
    x = torch.randn(2, 3, 32, 32)
    raw = backbone.model(x)[-1]
    assert backbone.channels_last and raw.shape == (2, 4, 4, 32)
    assert torch.equal(backbone(x), raw.permute(0, 3, 1, 2))


# -- fitting a stem to other input channels ------------------------------------------------------


def test_cross_modality_average_repeats_the_mean_filter():
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).view(2, 3, 1, 1)
    averaged = cross_modality_average(weight, 4)
    assert averaged.shape == (2, 4, 1, 1)
    assert averaged[:, :, 0, 0].tolist() == [[1.0] * 4, [4.0] * 4]


def test_replacing_the_first_conv_keeps_its_settings_and_bias():
    network = nn.Sequential(ConvModule(3, 8, 3, stride=2, padding=1, bias=True), nn.Conv2d(8, 8, 3))
    stem = network[0].conv
    name, former = replace_first_conv(network, 12)
    fitted = network[0].conv
    assert (name, former) == ("0.conv", 3)
    assert fitted is not stem and type(fitted) is type(stem)
    assert (fitted.in_channels, network[0].in_channels) == (12, 12)
    assert (fitted.stride, fitted.padding, fitted.kernel_size) == (
        stem.stride,
        stem.padding,
        (3, 3),
    )
    assert torch.equal(fitted.bias, stem.bias)
    assert torch.equal(fitted.weight, cross_modality_average(stem.weight.detach(), 12))
    assert network(torch.zeros(1, 12, 8, 8)).shape == (1, 8, 2, 2)
    with pytest.raises(ValueError, match="grouped"):
        replace_first_conv(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), 2)


def test_a_torchvision_checkpoint_loads_before_the_flow_stem_is_averaged(tmp_path):
    torch.manual_seed(1)
    rgb_weights = torchvision.models.resnet18().state_dict()
    checkpoint = tmp_path / "resnet18.pth"
    torch.save(rgb_weights, checkpoint)
    flow = dict(
        type="torchvision.resnet18", init_cfg=dict(type="Pretrained", checkpoint=str(checkpoint))
    )
    cfg = dict(
        type="MultiStreamRecognizer",
        flow_backbone=flow,
        cls_head=dict(TINY_HEAD),
        input_shapes=dict(flow=(3, 2, 32, 32)),
    )
    torch.manual_seed(2)
    model = build(cfg)
    model.init_weights()
    stem = model.flow_backbone.conv1.weight
    assert stem.shape == (64, 6, 7, 7)
    assert torch.allclose(stem, cross_modality_average(rgb_weights["conv1.weight"], 6))
    assert torch.equal(
        model.flow_backbone.layer1[0].conv1.weight, rgb_weights["layer1.0.conv1.weight"]
    )


# -- every backbone of the supported list, in either stream --------------------------------------

SUPPORTED = {
    "ResNet": TINY_RESNET,
    "ResNetTSM": dict(type="ResNetTSM", depth=18, pretrained2d=False),
    "MobileNetV2": dict(type="MobileNetV2", widen_factor=0.25, pretrained=None),
    "MobileNetV2TSM": dict(type="MobileNetV2TSM", widen_factor=0.25, pretrained2d=False),
    "X3D": dict(type="X3D", gamma_w=0.25, gamma_b=1.0, gamma_d=0.5),
    "C3DFeatures": dict(type="C3DFeatures", base_channels=4),
    "ResNet3d": TINY_RESNET3D,
    "ResNet3dSlowOnly": dict(TINY_RESNET3D, type="ResNet3dSlowOnly", inflate=(0, 1)),
    "UniFormer": dict(
        type="UniFormer", depth=[1, 1, 1, 1], embed_dim=[16, 32, 64, 128], head_dim=16, img_size=32
    ),
    "MViT": dict(
        type="MViT", arch="tiny", spatial_size=32, temporal_size=2, output_cls_token=False
    ),
    "torchvision.resnet18": dict(type="torchvision.resnet18"),
    "torchvision.mobilenet_v3_small": dict(type="torchvision.mobilenet_v3_small"),
    "torchvision.r3d_18": dict(type="torchvision.r3d_18"),
    "timm.mobilenetv3_small_100": dict(type="timm.mobilenetv3_small_100"),
    "timm.resnet18": dict(type="timm.resnet18"),
}
EXPECTED_LAYOUT = dict(
    ResNetTSM="segments2d",
    MobileNetV2TSM="segments2d",
    X3D="clip3d",
    C3DFeatures="clip3d",
    ResNet3d="clip3d",
    ResNet3dSlowOnly="clip3d",
    UniFormer="clip3d",
    MViT="clip3d",
    **{"torchvision.r3d_18": "clip3d"},
)


@pytest.mark.parametrize("stream", ["rgb", "flow"])
@pytest.mark.parametrize("name", list(SUPPORTED))
def test_a_supported_backbone_trains_in_either_stream(name, stream):
    steps = 2
    cfg = dict(
        type="MultiStreamRecognizer",
        cls_head=dict(TINY_HEAD),
        input_shapes={stream: (steps, 3 if stream == "rgb" else 2, 32, 32)},
        **{f"{stream}_backbone": SUPPORTED[name], f"{stream}_input": "auto"},
    )
    model = build(cfg)
    model.init_weights()
    assert model.stream_layouts[stream] == EXPECTED_LAYOUT.get(name, "stack2d")
    data = raw_batch(
        frames=steps, flow_fields=steps, with_rgb=stream == "rgb", with_flow=stream == "flow"
    )
    losses = model(**model.data_preprocessor(data, training=True), mode="loss")
    assert torch.isfinite(losses["loss_cls"])
    losses["loss_cls"].backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []
    stem = next(p for n, p in model.named_parameters() if n.startswith(f"{stream}_backbone"))
    assert stem.grad.abs().sum() > 0


# -- the demo model and the shipped backbone swaps -----------------------------------------------


def test_the_demo_model_infers_the_channels_it_used_to_write():
    inferred = Config.fromfile(str(DEMO)).model
    explicit = Config.fromfile(str(DEMO)).model
    explicit.flow_backbone.in_channels = 12
    explicit.fusion.update(in_channels=dict(rgb=256, flow=256), out_channels=256)
    explicit.cls_head.in_channels = 256
    explicit.rgb_input = explicit.flow_input = "stack2d"
    del explicit["input_shapes"]
    torch.manual_seed(0)
    inferred_model = build(inferred)
    torch.manual_seed(0)
    explicit_model = build(explicit)
    inferred_state, explicit_state = inferred_model.state_dict(), explicit_model.state_dict()
    assert list(inferred_state) == list(explicit_state)
    for name, value in explicit_state.items():
        assert torch.equal(inferred_state[name], value), name


def _without_backbones(cfg: Config) -> dict:
    resolved = cfg.to_dict()
    for stream in ("rgb", "flow"):
        del resolved["model"][f"{stream}_backbone"]
    return resolved


def test_the_shipped_backbone_swaps_are_all_there():
    assert [path.stem for path in BACKBONE_CONFIGS] == [
        "two-stream_mobilenetv2-concat-fusion_demo_gm-synthetic",
        "two-stream_mobilenetv2-rgb-r18-3stage-flow-concat-fusion_demo_gm-synthetic",
        "two-stream_r18-3stage-rgb-slowonly-r18-flow-concat-fusion_demo_gm-synthetic",
        "two-stream_r18-3stage-rgb-tsm-r18-flow-concat-fusion_demo_gm-synthetic",
        "two-stream_r18-3stage-rgb-x3d-s-flow-concat-fusion_demo_gm-synthetic",
        "two-stream_timm-mobilenetv3-small-concat-fusion_demo_gm-synthetic",
        "two-stream_tv-resnet18-concat-fusion_demo_gm-synthetic",
    ]


@pytest.mark.parametrize("path", BACKBONE_CONFIGS, ids=lambda path: path.stem)
def test_a_backbone_swap_changes_only_the_backbones_and_writes_no_channels(path):
    cfg, demo = Config.fromfile(str(path)), Config.fromfile(str(DEMO))
    assert _without_backbones(cfg) == _without_backbones(demo)
    swapped = [
        s for s in ("rgb", "flow") if cfg.model[f"{s}_backbone"] != demo.model[f"{s}_backbone"]
    ]
    assert swapped
    for stream in swapped:
        assert "in_channels" not in cfg.model[f"{stream}_backbone"]
    code = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert not [line for line in code if "channels" in line]


@pytest.mark.parametrize("path", BACKBONE_CONFIGS, ids=lambda path: path.stem)
def test_a_backbone_swap_trains_a_step_and_tests_at_tiny_size(path):
    cfg = Config.fromfile(str(path)).model
    cfg.input_shapes = TINY_SHAPES
    torch.manual_seed(0)
    model = build(cfg)
    model.init_weights()
    # Every parameter learns (the demo's optimizer freezes the RGB stream on purpose).
    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    stems = {
        stream: next(n for n, _ in model.named_parameters() if n.startswith(f"{stream}_backbone"))
        for stream in ("rgb", "flow")
    }
    before = {name: model.state_dict()[name].clone() for name in stems.values()}
    data = raw_batch(batch_size=2, frames=1, flow_fields=2, size=32)

    log_vars = model.train_step(data, optim_wrapper)

    assert torch.isfinite(torch.as_tensor(log_vars["loss"]))
    for stream, name in stems.items():  # the loss's gradient reached both stems
        assert not torch.equal(before[name], model.state_dict()[name]), stream
    model.eval()
    predictions = model.test_step(data)
    assert len(predictions) == 2
    for prediction in predictions:
        assert prediction.pred_score.shape == (3,)
        assert torch.isclose(prediction.pred_score.sum(), torch.tensor(1.0), atol=1e-5)
