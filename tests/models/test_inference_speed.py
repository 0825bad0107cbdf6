"""Folded BatchNorm and NHWC convolutions: the same class scores, faster, on a copy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gm_plugins.models.inference_speed import optimize_for_inference
from tests.models.tiny_models import TINY_RESNET, build, raw_batch, recognizer_config

INPUT_SHAPES = dict(rgb=(1, 3, 32, 32), flow=(3, 2, 32, 32))


def trained_like(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics, as training would, then eval mode."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            shape = module.running_mean.shape
            module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(shape, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(shape, generator=generator) * 0.1)
    return model.eval()


def tiny_model() -> nn.Module:
    cfg = recognizer_config(
        rgb_backbone=TINY_RESNET, flow_backbone=TINY_RESNET,
        fusion=dict(type="ConcatConvFusion"), input_shapes=INPUT_SHAPES,
    )  # fmt: skip
    return trained_like(build(cfg))


def test_optimised_copy_gives_the_same_predictions_and_leaves_the_model_alone():
    model = tiny_model()
    batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    optimized, record = optimize_for_inference(model)
    assert record["applied"] and record["folded_batch_norms"] == batch_norms > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in optimized.modules())
    conv = next(m for m in optimized.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # The original keeps its BatchNorms and layout (it may go on training).
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batch_norms
    original_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert not original_conv.weight.is_contiguous(memory_format=torch.channels_last)
    # Whole test path, data preprocessor included, on other windows than the check used.
    batch = raw_batch(batch_size=3)
    with torch.no_grad():
        expected = torch.stack([s.pred_score for s in model.test_step(batch)])
        got = torch.stack([s.pred_score for s in optimized.test_step(batch)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_a_copy_that_computes_something_else_is_not_used():
    model = tiny_model()
    kept, record = optimize_for_inference(model, tolerance=-1.0)  # nothing can pass
    assert kept is model and not record["applied"] and "differ" in record["reason"]


def test_a_model_in_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval"):
        optimize_for_inference(tiny_model().train())


def test_without_input_shapes_or_inputs_nothing_is_changed():
    cfg = recognizer_config(rgb_backbone=TINY_RESNET, fusion=dict(type="PoolFusion"))
    model = build(cfg).eval()
    kept, record = optimize_for_inference(model)
    assert kept is model and record == dict(applied=False, reason=record["reason"])
    inputs = dict(rgb=torch.randn(2, 1, 3, 32, 32))
    optimized, record = optimize_for_inference(model, inputs)
    assert record["applied"] and optimized is not model
