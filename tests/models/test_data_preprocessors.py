"""TwoStreamDataPreprocessor: stacking, per-modality normalisation, the consistent flip."""

from __future__ import annotations

import pytest
import torch

from gm_plugins.models import TwoStreamDataPreprocessor, flip_horizontally
from tests.models.tiny_models import build, raw_batch


def _preprocessor(**kwargs) -> TwoStreamDataPreprocessor:
    return build(dict(type="TwoStreamDataPreprocessor", **kwargs))


def test_flip_mirrors_frames_and_negates_x_flow_of_selected_samples_only():
    rgb = torch.arange(2 * 1 * 3 * 2 * 3, dtype=torch.float32).view(2, 1, 3, 2, 3)
    flow = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]).expand(2, 2, 2, 2, 3).clone()
    flow[:, :, 1] *= 10  # y-flow distinguishable from x-flow

    flipped_rgb, flipped_flow = flip_horizontally(rgb, flow, torch.tensor([True, False]))

    assert flipped_rgb[0, 0, 0].tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    assert torch.equal(flipped_rgb[1], rgb[1])
    x_flow, y_flow = flipped_flow[0, 0, 0], flipped_flow[0, 0, 1]
    assert torch.allclose(x_flow, torch.tensor([[-0.3, -0.2, -0.1], [-0.6, -0.5, -0.4]]))
    assert torch.allclose(y_flow, torch.tensor([[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]))
    assert torch.equal(flipped_flow[1], flow[1])


def test_flip_handles_a_missing_modality():
    flow = torch.rand(3, 2, 2, 4, 4)
    rgb, flipped = flip_horizontally(None, flow, torch.ones(3, dtype=torch.bool))
    assert rgb is None
    assert torch.equal(flipped[:, :, 0], -flow[:, :, 0].flip(-1))


def test_stacks_casts_and_normalises_each_modality_with_its_own_statistics():
    preprocessor = _preprocessor(
        rgb_mean=(10.0, 20.0, 30.0), rgb_std=(2.0, 4.0, 5.0), flow_mean=(0.5, -0.5), flow_std=(2, 4)
    )
    data = raw_batch(batch_size=2, frames=1, flow_fields=3, size=8)
    out = preprocessor(data, training=False)
    rgb, flow = out["inputs"]["rgb"], out["inputs"]["flow"]

    assert rgb.shape == (2, 1, 3, 8, 8) and rgb.dtype == torch.float32
    assert flow.shape == (2, 3, 2, 8, 8) and flow.dtype == torch.float32
    raw_rgb = data["inputs"]["rgb"][1].float()
    assert torch.allclose(rgb[1, 0, 2], (raw_rgb[0, 2] - 30.0) / 5.0)
    raw_flow = data["inputs"]["flow"][0]
    assert torch.allclose(flow[0, :, 0], (raw_flow[:, 0] - 0.5) / 2.0)
    assert torch.allclose(flow[0, :, 1], (raw_flow[:, 1] + 0.5) / 4.0)
    assert [s.subject_id for s in out["data_samples"]] == ["infant0", "infant1"]


def test_default_statistics_are_imagenet_for_rgb_and_identity_for_flow():
    data = raw_batch(size=8)
    out = _preprocessor()(data, training=False)
    expected_red = (data["inputs"]["rgb"][0][0, 0].float() - 123.675) / 58.395
    assert torch.allclose(out["inputs"]["rgb"][0, 0, 0], expected_red)
    assert torch.equal(out["inputs"]["flow"][0], data["inputs"]["flow"][0])


def test_training_flip_is_applied_before_normalisation_so_x_flow_negation_is_exact():
    preprocessor = _preprocessor(flow_mean=(0.25, 0.0), flow_std=(0.5, 1.0), flip_prob=1.0)
    data = raw_batch(size=8)
    out = preprocessor(data, training=True)
    raw_flow = data["inputs"]["flow"][0]
    assert torch.allclose(out["inputs"]["flow"][0, :, 0], (-raw_flow[:, 0].flip(-1) - 0.25) / 0.5)
    raw_rgb = data["inputs"]["rgb"][0].float()
    expected_rgb = (raw_rgb.flip(-1) - preprocessor.rgb_mean[0]) / preprocessor.rgb_std[0]
    assert torch.allclose(out["inputs"]["rgb"][0], expected_rgb)


def test_no_flip_at_test_time_or_with_zero_probability():
    data = raw_batch(size=8)
    reference = _preprocessor(flip_prob=0.0)(data, training=False)["inputs"]
    for training, prob in ((False, 1.0), (True, 0.0)):
        out = _preprocessor(flip_prob=prob)(data, training=training)["inputs"]
        assert torch.equal(out["rgb"], reference["rgb"])
        assert torch.equal(out["flow"], reference["flow"])


def test_random_flip_mirrors_rgb_and_flow_of_the_same_samples():
    torch.manual_seed(0)
    size, batch = 6, 64
    # RGB rises left to right and the x-flow is positive (rightward motion): a flip shows as a
    # falling RGB ramp and a negative x-flow.
    ramp = torch.linspace(0, 1, size).expand(size, size)
    rgb = [(ramp * 255).round().to(torch.uint8).expand(1, 3, size, size) for _ in range(batch)]
    flow = [torch.stack([ramp, torch.zeros_like(ramp)]).expand(2, 2, size, size)] * batch
    out = _preprocessor(flip_prob=0.5, rgb_mean=(0, 0, 0), rgb_std=(1, 1, 1))(
        dict(inputs=dict(rgb=rgb, flow=flow), data_samples=None), training=True
    )["inputs"]
    rgb_flipped = out["rgb"][:, 0, 0, 0, 0] > out["rgb"][:, 0, 0, 0, -1]
    flow_flipped = out["flow"][:, :, 0].sum(dim=(1, 2, 3)) < 0
    assert torch.equal(rgb_flipped, flow_flipped)
    assert 0 < int(rgb_flipped.sum()) < batch  # both outcomes happen at p = 0.5
    assert torch.equal(out["flow"][:, :, 1], torch.zeros_like(out["flow"][:, :, 1]))


@pytest.mark.parametrize("with_rgb, with_flow", [(True, False), (False, True)])
def test_a_single_modality_batch_passes(with_rgb, with_flow):
    data = raw_batch(size=8, with_rgb=with_rgb, with_flow=with_flow)
    out = _preprocessor(flip_prob=1.0)(data, training=True)["inputs"]
    assert set(out) == set(data["inputs"])


def test_bad_inputs_get_clear_errors():
    preprocessor = _preprocessor()
    wrong_channels = dict(inputs=dict(rgb=[torch.zeros(1, 4, 8, 8)]), data_samples=None)
    with pytest.raises(ValueError, match=r"'rgb' input must have shape \(T, 3, H, W\)"):
        preprocessor(wrong_channels)
    mixed_sizes = dict(
        inputs=dict(flow=[torch.zeros(6, 2, 8, 8), torch.zeros(6, 2, 8, 9)]), data_samples=None
    )
    with pytest.raises(ValueError, match="differ in shape"):
        preprocessor(mixed_sizes)
    with pytest.raises(KeyError, match="unknown input modalities"):
        preprocessor(dict(inputs=dict(depth=[torch.zeros(1, 1, 8, 8)]), data_samples=None))
    with pytest.raises(TypeError, match="inputs=dict"):
        preprocessor(dict(inputs=[torch.zeros(1, 3, 8, 8)], data_samples=None))
    with pytest.raises(ValueError, match="rgb_mean and rgb_std need 3 values"):
        _preprocessor(rgb_mean=(0.0, 0.0))
