"""Fusion modules: output shapes, the arithmetic of each fusion, and shape errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.models.tiny_models import build


def _maps(rgb_shape=(2, 8, 4, 4), flow_shape=(2, 8, 4, 4)) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return dict(
        rgb=torch.randn(*rgb_shape, generator=generator),
        flow=torch.randn(*flow_shape, generator=generator),
    )


def test_concat_conv_fusion_is_concat_then_1x1_conv_then_average_pool():
    fusion = build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8))).eval()
    feats = _maps()
    out = fusion(feats)

    assert fusion.out_channels == 8  # half of the 16 concatenated channels, as in the paper
    assert out.shape == (2, 8)
    concatenated = torch.cat([feats["rgb"], feats["flow"]], dim=1)
    conv = fusion.fuse_conv
    expected = F.conv2d(concatenated, conv.weight, conv.bias).mean(dim=(2, 3))
    assert torch.allclose(out, expected, atol=1e-6)


def test_concat_conv_fusion_paper_width_and_optional_activation():
    fusion = build(
        dict(
            type="ConcatConvFusion",
            in_channels=dict(rgb=2048, flow=2048),
            out_channels=2048,
            act_cfg=dict(type="ReLU"),
        )
    )
    assert fusion.fuse_conv.in_channels == 4096 and fusion.fuse_conv.out_channels == 2048
    out = fusion(_maps((1, 2048, 7, 7), (1, 2048, 7, 7)))
    assert out.shape == (1, 2048)
    assert (out >= 0).all()


def test_3d_feature_maps_are_averaged_over_time_first():
    fusion = build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8), out_channels=5))
    feats = _maps((2, 8, 3, 4, 4), (2, 8, 4, 4))  # a 3D RGB stream and a 2D flow stream
    out = fusion(feats)
    pooled = dict(rgb=feats["rgb"].mean(dim=2), flow=feats["flow"])
    assert out.shape == (2, 5)
    assert torch.allclose(out, fusion(pooled), atol=1e-6)


def test_mismatched_spatial_sizes_name_each_stream_when_alignment_is_off():
    fusion = build(
        dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8), spatial_align=None)
    )
    with pytest.raises(ValueError, match=r"rgb gives 7x7, flow gives 4x4.*spatial_align='pool'"):
        fusion(_maps((2, 8, 7, 7), (2, 8, 4, 4)))
    summing = build(dict(type="SumFusion", in_channels=dict(rgb=8, flow=8), spatial_align=None))
    with pytest.raises(ValueError, match="rgb gives 4x4, flow gives 2x3"):
        summing(_maps((2, 8, 4, 4), (2, 8, 2, 3)))
    with pytest.raises(ValueError, match=r"spatial_align must be one of \('pool', 'upsample'\)"):
        build(dict(type="SumFusion", in_channels=dict(rgb=8, flow=8), spatial_align="crop"))


def _relu_concat_fusion(spatial_align: str):
    cfg = dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8), act_cfg=dict(type="ReLU"))
    return build(dict(cfg, spatial_align=spatial_align)).eval()


def test_concat_fusion_pools_larger_maps_to_the_smaller_size_by_default():
    # With a ReLU after the 1x1 conv, where the maps are aligned changes the result.
    fusion = _relu_concat_fusion("pool")
    assert build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8))).spatial_align == "pool"
    feats = _maps((2, 8, 2, 2), (2, 8, 4, 4))
    conv = fusion.fuse_conv
    pooled_flow = F.avg_pool2d(feats["flow"], kernel_size=2)
    expected = F.relu(
        F.conv2d(torch.cat([feats["rgb"], pooled_flow], dim=1), conv.weight, conv.bias)
    )
    assert torch.allclose(fusion(feats), expected.mean(dim=(2, 3)), atol=1e-6)


def test_concat_fusion_can_resize_smaller_maps_up_bilinearly():
    fusion = _relu_concat_fusion("upsample")
    feats = _maps((2, 8, 2, 2), (2, 8, 4, 4))
    conv = fusion.fuse_conv
    resized = F.interpolate(feats["rgb"], size=(4, 4), mode="bilinear", align_corners=False)
    expected = F.relu(F.conv2d(torch.cat([resized, feats["flow"]], dim=1), conv.weight, conv.bias))
    out = fusion(feats)
    assert torch.allclose(out, expected.mean(dim=(2, 3)), atol=1e-6)
    pooling = _relu_concat_fusion("pool")
    pooling.load_state_dict(fusion.state_dict())
    assert not torch.allclose(out, pooling(feats), atol=1e-4)  # the two options differ


def test_sum_fusion_aligns_sizes_and_maps_of_odd_ratios():
    fusion = build(dict(type="SumFusion", in_channels=dict(rgb=8, flow=8)))
    feats = _maps((2, 8, 7, 7), (2, 8, 4, 3))  # pooled to 4x3 with overlapping windows
    expected = (F.adaptive_avg_pool2d(feats["rgb"], (4, 3)) + feats["flow"]).mean(dim=(2, 3))
    assert torch.allclose(fusion(feats), expected, atol=1e-6)
    upsampling = build(
        dict(type="SumFusion", in_channels=dict(rgb=8, flow=8), spatial_align="upsample")
    )
    resized = F.interpolate(feats["flow"], size=(7, 7), mode="bilinear", align_corners=False)
    expected = (feats["rgb"] + resized).mean(dim=(2, 3))
    assert torch.allclose(upsampling(feats), expected, atol=1e-6)


def test_alignment_is_logged_once_per_size_combination(monkeypatch):
    messages = []
    monkeypatch.setattr(
        "gm_plugins.models.fusion.print_log", lambda msg, **kwargs: messages.append(msg)
    )
    fusion = build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8)))
    fusion(_maps((2, 8, 4, 4), (2, 8, 4, 4)))
    assert messages == []  # equal sizes: nothing to say
    fusion(_maps((2, 8, 2, 2), (2, 8, 4, 4)))
    fusion(_maps((1, 8, 2, 2), (1, 8, 4, 4)))
    assert messages == [
        "ConcatConvFusion: the streams' feature maps differ in size (rgb gives 2x2, flow gives "
        "4x4); it average-pools them to 2x2 (spatial_align='pool')"
    ]
    fusion(_maps((2, 8, 7, 7), (2, 8, 4, 4)))
    assert len(messages) == 2 and "to 4x4" in messages[1]


def test_equal_sizes_are_not_reported_as_different_under_tracing(monkeypatch):
    """FLOP counters trace the model; traced sizes are tensors and must still compare equal."""
    from mmengine.analysis import FlopAnalyzer

    messages = []
    monkeypatch.setattr(
        "gm_plugins.models.fusion.print_log", lambda msg, **kwargs: messages.append(msg)
    )
    fusion = build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8))).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fusion = fusion

        def forward(self, rgb, flow):
            return self.fusion(dict(rgb=rgb, flow=flow))

    maps = _maps((1, 8, 4, 4), (1, 8, 4, 4))
    analyzer = FlopAnalyzer(Wrapper(), (maps["rgb"], maps["flow"]))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad():
        assert analyzer.total() > 0
    assert messages == []


def test_mismatched_channels_say_which_setting_to_change():
    fusion = build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=16)))
    with pytest.raises(ValueError, match=r"set fusion.in_channels.flow=8"):
        fusion(_maps())


def test_fusion_rejects_streams_it_was_not_configured_for():
    fusion = build(dict(type="ConcatConvFusion", in_channels=dict(rgb=8, flow=8)))
    with pytest.raises(ValueError, match=r"configured for streams \['rgb', 'flow'\]"):
        fusion(dict(rgb=torch.zeros(1, 8, 4, 4)))


@pytest.mark.parametrize("fusion_type", ["ConcatConvFusion", "SumFusion", "PoolFusion"])
def test_a_single_stream_passes_through_pooled(fusion_type):
    fusion = build(dict(type=fusion_type, in_channels=dict(flow=8)))
    flow = torch.randn(2, 8, 3, 5, 5)
    assert fusion.out_channels == 8
    assert torch.allclose(fusion(dict(flow=flow)), flow.mean(dim=(2, 3, 4)), atol=1e-6)


def test_sum_fusion_sums_maps_of_equal_width():
    fusion = build(dict(type="SumFusion", in_channels=dict(rgb=8, flow=8)))
    feats = _maps()
    assert len(fusion.projections) == 0
    expected = (feats["rgb"] + feats["flow"]).mean(dim=(2, 3))
    assert torch.allclose(fusion(feats), expected, atol=1e-6)


def test_sum_fusion_projects_streams_to_a_common_width():
    with pytest.raises(ValueError, match=r"set fusion\.out_channels"):
        build(dict(type="SumFusion", in_channels=dict(rgb=8, flow=4)))
    fusion = build(dict(type="SumFusion", in_channels=dict(rgb=8, flow=4), out_channels=8))
    assert set(fusion.projections) == {"flow"}
    feats = _maps((2, 8, 4, 4), (2, 4, 4, 4))
    projection = fusion.projections["flow"]
    projected_flow = F.conv2d(feats["flow"], projection.weight, projection.bias)
    expected = (feats["rgb"] + projected_flow).mean(dim=(2, 3))
    assert torch.allclose(fusion(feats), expected, atol=1e-6)


@pytest.mark.parametrize("fusion_type", ["ConcatConvFusion", "PoolFusion"])
def test_key_order_of_in_channels_does_not_change_the_model(fusion_type):
    # mmengine's Config.dump sorts keys: a dumped config must build the same model
    torch.manual_seed(0)
    given = build(dict(type=fusion_type, in_channels=dict(rgb=8, flow=4)))
    torch.manual_seed(0)
    sorted_keys = build(dict(type=fusion_type, in_channels=dict(flow=4, rgb=8)))
    assert list(sorted_keys.in_channels) == ["rgb", "flow"]
    sorted_keys.load_state_dict(given.state_dict())
    feats = _maps((2, 8, 4, 4), (2, 4, 4, 4))
    assert torch.equal(given(feats), sorted_keys(feats))


def test_pool_fusion_concatenates_pooled_streams_in_configured_order():
    fusion = build(dict(type="PoolFusion", in_channels=dict(rgb=8, flow=4)))
    feats = _maps((2, 8, 4, 4), (2, 4, 2, 2))  # pooling first allows different sizes
    out = fusion(feats)
    assert fusion.out_channels == 12
    assert torch.allclose(out[:, :8], feats["rgb"].mean(dim=(2, 3)))
    assert torch.allclose(out[:, 8:], feats["flow"].mean(dim=(2, 3)))


def test_late_fusion_is_the_weighted_average_of_stream_scores():
    fusion = build(
        dict(
            type="LateFusion",
            in_channels=dict(rgb=8, flow=8),
            num_classes=3,
            weights=dict(rgb=1.0, flow=3.0),
        )
    ).eval()
    feats = _maps((2, 8, 4, 4), (2, 8, 2, 2))
    scores = fusion.stream_scores(feats)
    assert fusion.produces_class_scores and fusion.out_channels == 3
    assert scores["rgb"].shape == scores["flow"].shape == (2, 3)
    assert torch.allclose(fusion(feats), 0.25 * scores["rgb"] + 0.75 * scores["flow"], atol=1e-6)
    expected_rgb = fusion.classifiers["rgb"](feats["rgb"].mean(dim=(2, 3)))
    assert torch.allclose(scores["rgb"], expected_rgb, atol=1e-6)


def test_late_fusion_weights_must_name_the_streams():
    with pytest.raises(ValueError, match="one weight per stream"):
        build(
            dict(
                type="LateFusion",
                in_channels=dict(rgb=8, flow=8),
                num_classes=3,
                weights=dict(rgb=1.0),
            )
        )


def test_feature_vectors_are_rejected_with_a_hint():
    fusion = build(dict(type="PoolFusion"))
    with pytest.raises(ValueError, match=r"expects \(N, C, H, W\) or \(N, C, T, H, W\)"):
        fusion(dict(rgb=torch.zeros(2, 8)))
