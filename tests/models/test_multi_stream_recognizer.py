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
    flow3d = dict(TINY_RESNET3D, in_channels=3)
    model = build(recognizer_config(None, flow3d, None, flow_input="clip3d"))
    batch = model.data_preprocessor(raw_batch(size=32, with_rgb=False))
    with pytest.raises(ValueError, match=r"flow_backbone\.in_channels=2"):
        model(**batch, mode="predict")


def test_a_backbone_without_in_channels_gets_a_different_fix():
    model = build(recognizer_config(None, dict(type="MobileNetV2", widen_factor=0.25), None))
    batch = model.data_preprocessor(raw_batch(size=32, with_rgb=False))
    with pytest.raises(ValueError, match="MobileNetV2 takes no in_channels argument"):
        model(**batch, mode="predict")


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


def test_the_old_name_two_stream_recognizer_builds_the_same_class():
    from mmaction.registry import MODELS

    from gm_plugins.models import MultiStreamRecognizer

    assert MODELS.get("TwoStreamRecognizer") is MultiStreamRecognizer
    assert MODELS.get("MultiStreamRecognizer") is MultiStreamRecognizer
    old_cfg = recognizer_config(TINY_RESNET, None, None)
    old_cfg.type = "TwoStreamRecognizer"
    old = build(old_cfg)
    new = build(recognizer_config(TINY_RESNET, None, None))
    assert type(old) is type(new) is MultiStreamRecognizer
    assert old.state_dict().keys() == new.state_dict().keys()


def test_a_config_file_naming_two_stream_recognizer_still_builds_and_predicts(tmp_path):
    from mmengine.config import Config

    path = tmp_path / "old_name.py"
    head = dict(type="FusionClsHead", num_classes=3, in_channels=128, dropout_ratio=0.0)
    model = dict(type="TwoStreamRecognizer", rgb_backbone=TINY_RESNET, cls_head=head)
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
