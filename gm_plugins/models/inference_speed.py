"""Faster CPU inference of a trained recognizer: BatchNorm folded into convolutions, and 2D
convolution weights stored channels-last (NHWC), which oneDNN runs faster on x86 CPUs.

Both change only how the same function is computed: :func:`optimize_for_inference` compares the
class scores on example windows before and after and keeps the original model when they differ
by more than ``tolerance``. Training is unaffected (a folded BatchNorm no longer updates its
statistics, so only a model in eval mode is optimised, on a copy).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

#: Largest |logit difference| allowed between the model and its optimised copy.
DEFAULT_TOLERANCE = 1e-4


def channels_last_convolutions(model: nn.Module) -> int:
    """Store every ``nn.Conv2d`` weight channels-last, in place. Returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
            count += 1
    return count


def count_batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def example_inputs(model: nn.Module, batch_size: int = 2, seed: int = 0) -> dict | None:
    """Random normalised windows of the recognizer's ``input_shapes`` (None if it has none)."""
    shapes = getattr(model, "input_shapes", None)
    if not shapes:
        return None
    generator = torch.Generator().manual_seed(seed)
    return {
        stream: torch.randn((batch_size, *shape), generator=generator)
        for stream, shape in shapes.items()
    }


def class_scores(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(N, num_classes) scores of normalised stream inputs, without the data preprocessor."""
    scores, _ = model.extract_feat(inputs, stage="head")
    return scores


def optimize_for_inference(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[nn.Module, dict]:
    """A copy of an eval-mode ``MultiStreamRecognizer`` with BatchNorm folded and NHWC convs.

    Args:
        model: the recognizer, in eval mode; it is not changed.
        inputs: normalised example windows ``{stream: (N, T, C, H, W)}`` for the check; by
            default random windows of the model's ``input_shapes``.
        tolerance: largest |logit difference| accepted.

    Returns:
        The optimised copy (or ``model`` itself when the check fails or cannot run) and a
        record: ``applied``, ``folded_batch_norms``, ``channels_last_convs``,
        ``max_difference`` and, when not applied, ``reason``.
    """
    from mmcv.cnn import fuse_conv_bn

    if model.training:
        raise ValueError("optimize_for_inference folds BatchNorm statistics: call model.eval()")
    inputs = inputs if inputs is not None else example_inputs(model)
    if inputs is None:
        return model, dict(applied=False, reason="no input_shapes to check the optimised model")
    before = count_batch_norms(model)
    optimized = fuse_conv_bn(copy.deepcopy(model)).eval()
    record = dict(folded_batch_norms=before - count_batch_norms(optimized))
    record["channels_last_convs"] = channels_last_convolutions(optimized)
    with torch.no_grad():
        difference = float(
            (class_scores(optimized, inputs) - class_scores(model, inputs)).abs().max()
        )
    record["max_difference"] = difference
    if not difference <= tolerance:  # also refuses NaN
        return model, dict(record, applied=False, reason=f"scores differ by {difference:.2e}")
    return optimized, dict(record, applied=True)
