"""MultiStreamRecognizer: the three modes for 2D and 3D streams, omitted streams, build errors."""

from __future__ import annotations

import pytest
import torch
from mmengine.optim import OptimWrapper

from tests.models.tiny_models import (
    TINY_RESNET,
    TINY_RESNET3D,
    build,
    raw_batch,
    recognizer_config,
)

CONCAT_128 = dict(type="ConcatConvFusion", in_channels=dict(rgb=128, flow=128), out_channels=64)


def _run_all_modes(model, data, num_classes=3):
    """Run loss, predict and tensor modes; return the tensor-mode feature maps."""
    model.train()
    batch = model.data_preprocessor(data, training=True)
    losses = model(**batch, mode="loss")
    assert torch.isfinite(losses["loss_cls"]) and losses["loss_cls"].dim() == 0

    model.eval()
    batch = model.data_preprocessor(data, training=False)
    with torch.no_grad():
        predictions = model(**batch, mode="predict")
        feature_maps = model(**batch, mode="tensor")
        scores = model(**batch, mode="tensor", stage="head")
    assert len(predictions) == len(data["data_samples"])
    for prediction, expected in zip(predictions, scores.softmax(dim=1), strict=True):
        assert prediction.pred_score.shape == (num_classes,)
        assert torch.allclose(prediction.pred_score, expected, atol=1e-6)
        assert prediction.pred_label.item() == int(expected.argmax())
        assert "subject_id" in prediction.metainfo  # data samples keep their metainfo
    return feature_maps


def test_2d_streams_stack_frames_and_flow_fields_as_channels():
    flow = dict(TINY_RESNET, in_channels=6)  # L=3 flow fields -> 6 channels
    model = build(recognizer_config(TINY_RESNET, flow, CONCAT_128, head_channels=64))
    data = raw_batch(batch_size=2, frames=1, flow_fields=3, size=32)
    maps = _run_all_modes(model, data)
    assert maps["rgb"].shape == (2, 128, 4, 4)
    assert maps["flow"].shape == (2, 128, 4, 4)
    batch = model.data_preprocessor(data)
    fused = model(**batch, mode="tensor", stage="fusion")
    assert fused.shape == (2, 64)


def test_stack2d_flow_channels_are_x0_y0_x1_y1():
    flow = dict(TINY_RESNET, in_channels=4)
    model = build(recognizer_config(None, flow, None)).eval()
    captured = {}
    model.flow_backbone.register_forward_pre_hook(lambda _, args: captured.update(x=args[0]))
    clip = torch.arange(2.0).view(1, 2, 1, 1, 1) * 10 + torch.arange(2.0).view(1, 1, 2, 1, 1)
    model(dict(flow=clip.expand(1, 2, 2, 8, 8)), mode="tensor")
    assert captured["x"][0, :, 0, 0].tolist() == [0.0, 1.0, 10.0, 11.0]  # x0, y0, x1, y1


def test_3d_streams_take_channel_first_clips():
    rgb = dict(TINY_RESNET3D, in_channels=3)
    flow = dict(TINY_RESNET3D, in_channels=2)
    fusion = dict(type="ConcatConvFusion", in_channels=dict(rgb=16, flow=16))
    model = build(
        recognizer_config(
            rgb, flow, fusion, head_channels=16, rgb_input="clip3d", flow_input="clip3d"
        )
    )
    maps = _run_all_modes(model, raw_batch(batch_size=2, frames=2, flow_fields=4, size=32))
    assert maps["rgb"].shape == (2, 16, 2, 4, 4)
    assert maps["flow"].shape == (2, 16, 4, 4, 4)


def test_2d_rgb_and_3d_flow_mix_with_late_fusion():
    flow = dict(TINY_RESNET3D, in_channels=2)
    fusion = dict(type="LateFusion", in_channels=dict(rgb=128, flow=16), num_classes=3)
    cfg = recognizer_config(TINY_RESNET, flow, fusion, head_channels=3, flow_input="clip3d")
    cfg.cls_head.with_fc = False
    model = build(cfg)
    _run_all_modes(model, raw_batch(batch_size=2, frames=1, flow_fields=4, size=32))


def test_segments2d_runs_tsm_per_frame_and_restacks_time():
    tsm = dict(type="ResNetTSM", depth=18, pretrained=None, num_segments=2, shift_div=8)
    fusion = dict(type="PoolFusion", in_channels=dict(rgb=512))
    model = build(recognizer_config(tsm, None, fusion, head_channels=512, rgb_input="segments2d"))
    data = raw_batch(batch_size=2, frames=2, size=32, with_flow=False)
    maps = _run_all_modes(model, data)
    assert maps["rgb"].shape == (2, 512, 2, 1, 1)


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_either_stream_may_be_omitted(stream):
    backbone = dict(TINY_RESNET, in_channels=3 if stream == "rgb" else 6)
    cfg = recognizer_config(**{f"{stream}_backbone": backbone})
    model = build(cfg)  # fusion=None: the single stream is pooled and passed to the head
    assert model.streams == (stream,)
    data = raw_batch(size=32, with_rgb=stream == "rgb", with_flow=stream == "flow")
    maps = _run_all_modes(model, data)
    assert set(maps) == {stream}


def test_an_input_for_an_omitted_stream_is_ignored_but_a_missing_one_is_an_error():
    model = build(recognizer_config(TINY_RESNET, None, None)).eval()
    model(**model.data_preprocessor(raw_batch(size=32)), mode="predict")
    flow_model = build(recognizer_config(None, dict(TINY_RESNET, in_channels=6), None))
    batch = flow_model.data_preprocessor(raw_batch(size=32, with_flow=False))
    with pytest.raises(KeyError, match="has a flow stream but the batch has no 'flow' input"):
        flow_model(**batch, mode="predict")


def test_one_train_step_updates_the_weights():
    flow = dict(TINY_RESNET, in_channels=6)
    model = build(recognizer_config(TINY_RESNET, flow, CONCAT_128, head_channels=64))
    model.init_weights()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    log_vars = model.train_step(raw_batch(size=32), optim_wrapper)
    assert torch.isfinite(torch.as_tensor(log_vars["loss"]))
    for name in ("rgb_backbone.conv1.conv.weight", "flow_backbone.conv1.conv.weight"):
        assert not torch.equal(before[name], model.state_dict()[name]), name
    assert not torch.equal(before["fusion.fuse_conv.weight"], model.fusion.fuse_conv.weight)
    assert not torch.equal(before["cls_head.fc_cls.weight"], model.cls_head.fc_cls.weight)


# -- errors that say what to fix ----------------------------------------------------------------


def test_an_unregistered_backbone_is_named_with_a_suggestion():
    with pytest.raises(ValueError) as error:
        build(recognizer_config(dict(TINY_RESNET, type="ResNet5"), None, None))
    message = str(error.value)
    assert message.startswith(
        "rgb_backbone type 'ResNet5' is not registered in mmaction::model; did you mean ResNet"
    )
    with pytest.raises(ValueError, match=r"fusion type 'ConcatFusion' is not registered.*Concat"):
        build(recognizer_config(TINY_RESNET, None, dict(type="ConcatFusion")))


def test_flow_channels_that_disagree_with_the_clip_say_which_in_channels_to_set():
    model = build(recognizer_config(None, dict(TINY_RESNET, in_channels=10), None))
    batch = model.data_preprocessor(raw_batch(size=32, flow_fields=6, with_rgb=False))
    with pytest.raises(ValueError) as error:
        model(**batch, mode="predict")
    assert str(error.value) == (
        "flow_backbone expects 10 input channels but the clip has L=6 flow fields "
        "(12 channels): set flow_backbone.in_channels=12"
    )


def test_rgb_and_3d_channel_mismatches_are_explained():
    model = build(recognizer_config(dict(TINY_RESNET, in_channels=3), None, None))
    batch = model.data_preprocessor(raw_batch(size=32, frames=2, with_flow=False))
    with pytest.raises(ValueError, match=r"T=2 RGB frames \(6 channels\).*in_channels=6"):
        model(**batch, mode="predict")
    # A clip3d stream gives 2 (flow) channels whatever the clip: checked at build time.
    flow3d = dict(TINY_RESNET3D, in_channels=3)
    with pytest.raises(ValueError) as error:
        build(recognizer_config(None, flow3d, None, flow_input="clip3d"))
    assert str(error.value) == (
        "flow_backbone.in_channels=3 but flow_input='clip3d' gives it 2 channels per flow field: "
        "set flow_backbone.in_channels=2, or leave it out to fit the stem to the input"
    )


def test_a_backbone_without_in_channels_gets_a_different_fix():
    model = build(recognizer_config(None, dict(type="MobileNetV2", widen_factor=0.25), None))
    batch = model.data_preprocessor(raw_batch(size=32, with_rgb=False))
    with pytest.raises(ValueError) as error:
        model(**batch, mode="predict")
    assert str(error.value).endswith(
        "MobileNetV2 takes no in_channels argument, so give the recognizer "
        "input_shapes=dict(flow=(3, 2, H, W)) and its first convolution is fitted to the input "
        "at build time"
    )


def test_tsm_segments_must_match_the_clip_length():
    tsm = dict(type="ResNetTSM", depth=18, pretrained=None, num_segments=8)
    model = build(recognizer_config(tsm, None, None, head_channels=512, rgb_input="segments2d"))
    batch = model.data_preprocessor(raw_batch(size=32, frames=2, with_flow=False))
    with pytest.raises(ValueError, match=r"set rgb_backbone\.num_segments=2"):
        model(**batch, mode="predict")


def test_layouts_are_validated_against_the_backbone():
    with pytest.raises(ValueError, match="rgb_input must be one of"):
        build(recognizer_config(TINY_RESNET, None, None, rgb_input="frames"))
    with pytest.raises(ValueError, match=r"is a 2D network.*flow_input='clip3d'"):
        build(recognizer_config(None, TINY_RESNET, None, flow_input="clip3d"))
    with pytest.raises(ValueError, match=r"is a 3D network.*set rgb_input='clip3d'"):
        build(recognizer_config(TINY_RESNET3D, None, None, head_channels=16))


def test_fusion_and_head_must_fit_the_streams():
    with pytest.raises(ValueError, match="two streams need a fusion module"):
        build(recognizer_config(TINY_RESNET, dict(TINY_RESNET, in_channels=6), None))
    with pytest.raises(ValueError, match=r"fusion.in_channels names streams \['rgb', 'flow'\]"):
        build(recognizer_config(TINY_RESNET, None, CONCAT_128))
    with pytest.raises(ValueError, match=r"set cls_head\.in_channels=64"):
        flow = dict(TINY_RESNET, in_channels=6)
        build(recognizer_config(TINY_RESNET, flow, CONCAT_128, head_channels=32))
    late = dict(type="LateFusion", in_channels=dict(rgb=128), num_classes=3)
    with pytest.raises(ValueError, match=r"already outputs class scores: set cls_head\.with_fc"):
        build(recognizer_config(TINY_RESNET, None, late, head_channels=3))
    with pytest.raises(ValueError, match="needs rgb_backbone, flow_backbone or both"):
        build(recognizer_config(None, None, None))


@pytest.mark.parametrize(
    "backbone, layout, channels",
    [
        (dict(type="MobileNetV2", widen_factor=0.25, pretrained=None), "stack2d", 1280),
        (dict(type="X3D", gamma_w=0.25, gamma_b=1.0, gamma_d=0.5), "clip3d", 64),
    ],
)
def test_other_mmaction_backbones_serve_as_the_rgb_stream(backbone, layout, channels):
    frames = 1 if layout == "stack2d" else 2
    cfg = recognizer_config(backbone, None, None, head_channels=channels, rgb_input=layout)
    model = build(cfg)
    maps = _run_all_modes(model, raw_batch(size=32, frames=frames, with_flow=False))
    assert maps["rgb"].shape[:2] == (2, channels)


def test_a_config_file_of_a_one_stream_recognizer_builds_and_predicts(tmp_path):
    from mmengine.config import Config

    path = tmp_path / "one_stream.py"
    head = dict(type="FusionClsHead", num_classes=3, in_channels=128, dropout_ratio=0.0)
    model = dict(type="MultiStreamRecognizer", rgb_backbone=TINY_RESNET, cls_head=head)
    path.write_text(
        f"default_scope = 'mmaction'\n"
        f"custom_imports = dict(imports=['gm_plugins'], allow_failed_imports=False)\n"
        f"model = {model!r}\n"
    )
    cfg = Config.fromfile(str(path))
    recognizer = build(cfg.model)
    assert type(recognizer).__name__ == "MultiStreamRecognizer"
    assert recognizer.streams == ("rgb",)
    _run_all_modes(recognizer, raw_batch(with_flow=False))


# -- fitting the parts at build time (input_shapes) ---------------------------------------------

MOBILENET = dict(type="MobileNetV2", widen_factor=0.25, pretrained=None)
TINY_SHAPES = dict(rgb=(1, 3, 32, 32), flow=(2, 2, 32, 32))


def _inferring_config(rgb=MOBILENET, flow=TINY_RESNET, fusion=None, **kwargs):
    """Two streams with no channel count given anywhere: fusion and head are inferred."""
    cfg = recognizer_config(rgb, flow, fusion or dict(type="ConcatConvFusion"), **kwargs)
    del cfg.cls_head["in_channels"]
    cfg.input_shapes = TINY_SHAPES
    return cfg


def test_fusion_and_head_channels_are_inferred_from_the_backbones():
    model = build(_inferring_config())
    # MobileNetV2 gives 1280 channels at stride 32, the two-stage ResNet 128 at stride 8.
    assert model.fusion.in_channels == dict(rgb=1280, flow=128)
    assert model.fusion.out_channels == (1280 + 128) // 2
    assert model.cls_head.in_channels == model.cls_head.fc_cls.in_features == 704
    assert model.flow_backbone.conv1.conv.in_channels == 4  # L=2 flow fields
    maps = _run_all_modes(model, raw_batch(batch_size=2, frames=1, flow_fields=2, size=32))
    assert maps["rgb"].shape == (2, 1280, 1, 1) and maps["flow"].shape == (2, 128, 4, 4)


def test_every_fusion_gets_its_channels_and_late_fusion_its_classes():
    late_cfg = _inferring_config(fusion=dict(type="LateFusion"))
    late_cfg.cls_head.with_fc = False
    late = build(late_cfg)
    assert late.fusion.in_channels == dict(rgb=1280, flow=128)
    assert late.fusion.num_classes == late.cls_head.in_channels == 3
    pool = build(_inferring_config(fusion=dict(type="PoolFusion")))
    assert pool.fusion.in_channels == dict(rgb=1280, flow=128)
    assert pool.cls_head.in_channels == 1408
    summing = build(_inferring_config(fusion=dict(type="SumFusion", out_channels=32)))
    assert set(summing.fusion.projections) == {"rgb", "flow"}
    assert summing.cls_head.in_channels == 32
    one_stream = build(_inferring_config(flow=None))
    assert one_stream.fusion.in_channels == dict(rgb=1280)
    assert one_stream.cls_head.in_channels == 1280


def test_given_channels_are_checked_against_the_maps():
    with pytest.raises(ValueError) as error:
        build(
            _inferring_config(
                fusion=dict(type="ConcatConvFusion", in_channels=dict(rgb=80, flow=128))
            )
        )
    assert str(error.value) == (
        "fusion.in_channels.rgb=80 but the rgb backbone (MobileNetV2) gives 1280-channel maps "
        "at input_shapes.rgb=(1, 3, 32, 32): set fusion.in_channels.rgb=1280, or leave "
        "fusion.in_channels out to infer it"
    )
    cfg = _inferring_config()
    cfg.cls_head.in_channels = 256
    with pytest.raises(ValueError, match=r"gives 704-channel features.*in_channels=704"):
        build(cfg)
    with pytest.raises(ValueError) as error:
        build(_inferring_config(flow=dict(TINY_RESNET, in_channels=12)))
    assert str(error.value) == (
        "flow_backbone.in_channels=12 but input_shapes.flow has L=2 flow fields, stacked as 4 "
        "channels (flow_input='stack2d'): set flow_backbone.in_channels=4, or leave it out to fit "
        "the stem to the input"
    )
    explicit = _inferring_config(
        flow=dict(TINY_RESNET, in_channels=4),
        fusion=dict(type="ConcatConvFusion", in_channels=dict(flow=128, rgb=1280)),
    )
    explicit.cls_head.in_channels = 704
    assert build(explicit).fusion.in_channels == dict(rgb=1280, flow=128)  # right values pass


def test_a_backbone_taking_in_channels_is_built_as_if_configured_so():
    flow_only = dict(rgb=None, flow=TINY_RESNET, fusion=dict(type="PoolFusion"))
    torch.manual_seed(0)
    inferred = build(_inferring_config(**flow_only))
    torch.manual_seed(0)
    explicit = build(_inferring_config(**dict(flow_only, flow=dict(TINY_RESNET, in_channels=4))))
    assert inferred.flow_backbone.in_channels == 4
    inferred_state, explicit_state = inferred.state_dict(), explicit.state_dict()
    assert list(inferred_state) == list(explicit_state)
    for name, value in explicit_state.items():  # the same initial weights too
        assert torch.equal(inferred_state[name], value), name


def test_a_stem_without_in_channels_is_replaced_by_the_cross_modality_average():
    from mmaction.registry import MODELS

    torch.manual_seed(0)
    rgb_network = MODELS.build(dict(MOBILENET))
    torch.manual_seed(0)
    model = build(_inferring_config(rgb=None, flow=MOBILENET, fusion=dict(type="PoolFusion")))
    stem = rgb_network.conv1.conv.weight  # (8, 3, 3, 3)
    fitted = model.flow_backbone.conv1.conv
    assert fitted.weight.shape == (8, 4, 3, 3) and fitted.in_channels == 4
    assert model.flow_backbone.conv1.in_channels == 4  # the ConvModule's record follows
    for channel in range(4):
        assert torch.allclose(fitted.weight[:, channel], stem.mean(dim=1), atol=1e-7)
    later = model.flow_backbone.layer1[0].conv[0].conv.weight
    assert torch.equal(later, rgb_network.layer1[0].conv[0].conv.weight)
    _run_all_modes(model, raw_batch(frames=1, flow_fields=2, size=32, with_rgb=False))


def test_pretrained_weights_load_before_the_stem_is_averaged(tmp_path):
    from mmaction.registry import MODELS

    torch.manual_seed(1)
    checkpoint = tmp_path / "mobilenet_rgb.pth"
    rgb_weights = MODELS.build(dict(MOBILENET)).state_dict()
    torch.save(rgb_weights, checkpoint)
    flow = dict(MOBILENET, pretrained=str(checkpoint))
    torch.manual_seed(2)  # other random weights than the checkpoint's
    model = build(_inferring_config(rgb=None, flow=flow, fusion=dict(type="PoolFusion")))

    def check_flow_weights():
        stem = model.flow_backbone.conv1.conv.weight
        expected = rgb_weights["conv1.conv.weight"].mean(dim=1, keepdim=True).expand(-1, 4, -1, -1)
        assert torch.allclose(stem, expected, atol=1e-7)
        later = model.flow_backbone.layer1[0].conv[0].conv.weight
        assert torch.equal(later, rgb_weights["layer1.0.conv.0.conv.weight"])

    check_flow_weights()
    reinitialised = []
    model.flow_backbone.init_weights = lambda: reinitialised.append(True)
    model.init_weights()  # what the runner calls: the flow backbone is left as it is
    assert reinitialised == []
    check_flow_weights()


def test_auto_layout_follows_the_backbone_and_takes_num_segments_from_the_shapes():
    tsm = dict(type="ResNetTSM", depth=18, pretrained=None)
    flow3d = dict(TINY_RESNET3D)
    cfg = _inferring_config(rgb=tsm, flow=flow3d, rgb_input="auto", flow_input="auto")
    cfg.input_shapes = dict(rgb=(3, 3, 32, 32), flow=(2, 2, 32, 32))
    model = build(cfg)
    assert model.stream_layouts == dict(rgb="segments2d", flow="clip3d")
    assert model.rgb_backbone.num_segments == 3
    assert model.flow_backbone.conv1.conv.in_channels == 2
    auto_2d = build(_inferring_config(rgb_input="auto", flow_input="auto"))
    assert auto_2d.stream_layouts == dict(rgb="stack2d", flow="stack2d")
    cfg.rgb_backbone.num_segments = 8
    with pytest.raises(ValueError, match=r"num_segments=8 .* T=3 RGB frames: set rgb_backbone"):
        build(cfg)


def test_the_dry_run_leaves_training_mode_and_statistics_alone():
    model = build(_inferring_config())
    assert model.training
    assert all(module.training for module in model.modules())
    bn = model.flow_backbone.conv1.bn
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert int(bn.num_batches_tracked) == 0


def test_what_was_inferred_is_logged(monkeypatch):
    messages = []
    monkeypatch.setattr(
        "gm_plugins.models.recognizers.multi_stream.print_log",
        lambda msg, **kwargs: messages.append(msg),
    )
    build(_inferring_config())
    assert messages == [
        "flow_backbone ResNet: in_channels=4, as input_shapes.flow has L=2 flow fields, stacked "
        "as 4 channels (flow_input='stack2d')",
        "MultiStreamRecognizer: rgb_backbone MobileNetV2 (stack2d) gives 1280x1x1 maps at "
        "(1, 3, 32, 32); flow_backbone ResNet (stack2d) gives 128x4x4 maps at (2, 2, 32, 32); "
        "fusion.in_channels={'rgb': 1280, 'flow': 128} (inferred), cls_head.in_channels=704 "
        "(inferred)",
    ]


def test_input_shapes_are_checked():
    cfg = _inferring_config()
    cfg.input_shapes = dict(rgb=(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"no 'flow' entry.*add flow=\(L, 2, H, W\)"):
        build(cfg)
    cfg.input_shapes = dict(rgb=(1, 3, 32, 32), flow=(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"input_shapes.flow must be \(L, 2, H, W\)"):
        build(cfg)
    cfg.input_shapes = dict(TINY_SHAPES, depth=(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"unknown streams \['depth'\]"):
        build(cfg)
    one_stream = _inferring_config(flow=None)  # an entry for an omitted stream is ignored
    assert build(one_stream).input_shapes == dict(rgb=(1, 3, 32, 32))


def test_a_backbone_that_returns_no_feature_map_is_explained():
    mvit = dict(type="MViT", arch="tiny", spatial_size=32, temporal_size=2)
    cfg = _inferring_config(rgb=mvit, flow=None, rgb_input="clip3d")
    cfg.input_shapes = dict(rgb=(2, 3, 32, 32))
    with pytest.raises(ValueError) as error:
        build(cfg)
    assert str(error.value).startswith(
        "rgb_backbone MViT gives [(2, 768, 1, 1, 1), (2, 768)] at input_shapes.rgb=(2, 3, 32, "
        "32) (rgb_input='clip3d'), not a feature map"
    )
    assert "MViT: set output_cls_token=False" in str(error.value)
