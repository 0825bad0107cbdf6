"""The two-stream recognizer learns: on toy windows whose class only one stream shows, the loss
falls and held-out windows are classified far above chance."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

SIZE, FRAMES, FLOW_FIELDS, NUM_CLASSES = 32, 1, 3, 3
ITERATIONS, BATCH_SIZE = 25, 6  # the loss fell below 0.1 by iteration 17 here
# ResNet-18 cut after two stages (128-channel maps at stride 8), one per stream, fused by a
# 1x1 convolution over the concatenated maps: the paper's method at toy size.
TINY_RESNET = dict(type="ResNet", depth=18, pretrained=None, num_stages=2, out_indices=(1,),
                   strides=(1, 2), dilations=(1, 1))  # fmt: skip
RECOGNIZER = dict(
    type="MultiStreamRecognizer",
    rgb_backbone=dict(TINY_RESNET, in_channels=3 * FRAMES),
    flow_backbone=dict(TINY_RESNET, in_channels=2 * FLOW_FIELDS),
    fusion=dict(type="ConcatConvFusion", in_channels=dict(rgb=128, flow=128), out_channels=64),
    cls_head=dict(type="FusionClsHead", num_classes=NUM_CLASSES, in_channels=64,
                  dropout_ratio=0.0, average_clips="prob"),
)  # fmt: skip


def toy_window(label: int, informative: str, rng: np.random.Generator) -> dict:
    """One window (RGB frames and flow fields) whose class shows in ``informative`` only.

    Flow: class 0 has a square patch moving down by 1 px per field, class 1 the patch moving
    up, class 2 no patch, at a random place, on noise (up and down survive the horizontal
    flip the data preprocessor applies in training). RGB: class k is brighter by 60 * k on a
    random texture. The other stream is the same noise for every class.
    """
    flow = rng.normal(0, 0.3, (FLOW_FIELDS, 2, SIZE, SIZE)).astype(np.float32)
    rgb = rng.integers(0, 120, (FRAMES, 3, SIZE, SIZE)).astype(np.float32)
    if informative == "flow" and label < 2:
        x, y = rng.integers(0, SIZE - 12, 2)
        flow[:, 1, y : y + 12, x : x + 12] += 1.0 if label == 0 else -1.0
    if informative == "rgb":
        rgb += 60 * label
    return dict(rgb=torch.from_numpy(rgb).to(torch.uint8), flow=torch.from_numpy(flow))


def toy_batch(labels: list[int], informative: str, rng: np.random.Generator) -> dict:
    """A collated batch (lists of per-window tensors) as ``pseudo_collate`` gives it."""
    windows = [toy_window(label, informative, rng) for label in labels]
    samples = [
        ActionDataSample(metainfo=dict(subject_id=f"toy{i}", window_index=0)).set_gt_label(label)
        for i, label in enumerate(labels)
    ]
    inputs = {stream: [w[stream] for w in windows] for stream in ("rgb", "flow")}
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.slow
@pytest.mark.parametrize("informative", ["flow", "rgb"])
def test_two_stream_recognizer_learns_what_one_stream_shows(informative):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with DefaultScope.overwrite_default_scope("mmaction"):
        model = MODELS.build(copy.deepcopy(RECOGNIZER))
    model.init_weights()
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    losses = []
    model.train()
    for _ in range(ITERATIONS):
        labels = rng.permutation(np.resize(np.arange(NUM_CLASSES), BATCH_SIZE)).tolist()
        log_vars = model.train_step(toy_batch(labels, informative, rng), optim_wrapper)
        losses.append(float(torch.as_tensor(log_vars["loss"]).detach()))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, f"loss {first:.3f} -> {last:.3f}"

    model.eval()
    held_out = np.resize(np.arange(NUM_CLASSES), 30).tolist()
    with torch.no_grad():
        predictions = model.test_step(toy_batch(held_out, informative, np.random.default_rng(1)))
    predicted = [int(p.pred_label) for p in predictions]
    accuracy = np.mean(np.equal(predicted, held_out))
    assert accuracy >= 0.8  # chance is 1/3
