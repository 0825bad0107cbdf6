"""The one builder of random windows the speed benchmarks run models on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

#: Random flow fields are uniform in [-FLOW_BOUND, FLOW_BOUND] pixels (speed does not depend
#: on the values; the chain clips real flow at 20 pixels).
FLOW_BOUND = 4.0


def random_windows(
    input_shapes: Mapping[str, Sequence[int]], batch_size: int, num_classes: int = 3, seed: int = 0
) -> dict:
    """A collated batch of random windows as the dataset packs them, the same for a seed.

    Args:
        input_shapes: the streams to make, as a recognizer's ``input_shapes``:
            ``rgb`` (T, 3, H, W) uint8 frames and/or ``flow`` (L, 2, H, W) float32 fields.
        batch_size: windows in the batch.
        num_classes: labels cycle through this many classes.

    Returns:
        dict(inputs=dict(rgb=[...], flow=[...]), data_samples=[...]): ``batch_size`` tensors per
        stream, and ``ActionDataSample`` s with ``gt_label`` set.
    """
    from mmaction.structures import ActionDataSample

    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    if "rgb" in input_shapes:
        shape = (batch_size, *input_shapes["rgb"])
        rgb = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        inputs["rgb"] = list(rgb)
    if "flow" in input_shapes:
        shape = (batch_size, *input_shapes["flow"])
        flow = (torch.rand(shape, generator=generator) * 2 - 1) * FLOW_BOUND
        inputs["flow"] = list(flow)
    samples = [ActionDataSample().set_gt_label(i % num_classes) for i in range(batch_size)]
    return dict(inputs=inputs, data_samples=samples)
