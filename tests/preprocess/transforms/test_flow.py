"""OpticalFlow: direction and size of a known shift, clipping, mirroring, algorithm choice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gm_plugins.preprocess.transforms import OpticalFlow
from gm_plugins.preprocess.transforms.flow import tvl1_available


def shifted_pair(dx: int, dy: int, size: int = 64) -> list[np.ndarray]:
    """A smooth random texture and the same texture moved by (dx, dy) pixels."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(
        rng.integers(0, 255, (16, 16, 3)).astype(np.uint8),
        (size + 16, size + 16),
        interpolation=cv2.INTER_CUBIC,
    )
    first = texture[8 : 8 + size, 8 : 8 + size]
    second = texture[8 - dy : 8 - dy + size, 8 - dx : 8 - dx + size]
    return [np.ascontiguousarray(first), np.ascontiguousarray(second)]


@pytest.mark.parametrize("algorithm", ["farneback", "dis", "tvl1"])
def test_known_shift_gives_flow_of_that_sign_and_size(algorithm):
    transform = OpticalFlow(algorithm=algorithm, bound=20)
    results = transform(dict(imgs=shifted_pair(dx=3, dy=-2)))
    flows = results["flows"]
    assert flows.shape == (1, 64, 64, 2) and flows.dtype == np.float32
    centre = flows[0, 16:48, 16:48]  # pixels, away from the borders
    assert np.median(centre[..., 0]) == pytest.approx(3.0, abs=0.6)
    assert np.median(centre[..., 1]) == pytest.approx(-2.0, abs=0.6)
    assert results["flow_bound"] == 20 and results["flow_algorithm"] == algorithm


def test_default_is_the_papers_farneback():
    transform = OpticalFlow()
    assert transform.algorithm == "farneback" and transform.bound == 20
    assert "farneback" in repr(transform)


def test_flow_stays_in_pixels_clipped_to_the_bound():
    big_shift = OpticalFlow(bound=2)(dict(imgs=shifted_pair(dx=5, dy=0)))["flows"]
    assert big_shift.min() >= -2 and big_shift.max() <= 2
    assert np.median(big_shift[0, 16:48, 16:48, 0]) == pytest.approx(2.0)


def test_flow_of_a_mirrored_clip_is_the_mirrored_flow_with_x_negated():
    """The rule behind the horizontal-flip augmentation of the flow stream."""
    frames = shifted_pair(dx=3, dy=-2)
    flow = OpticalFlow(algorithm="dis", bound=20)(dict(imgs=frames))["flows"][0]
    mirrored = [np.ascontiguousarray(frame[:, ::-1]) for frame in frames]
    flow_of_mirror = OpticalFlow(algorithm="dis", bound=20)(dict(imgs=mirrored))["flows"][0]
    expected = flow[:, ::-1] * np.array([-1.0, 1.0], np.float32)
    centre = (slice(16, 48), slice(16, 48))
    assert np.median(flow_of_mirror[centre][..., 0]) == pytest.approx(-3.0, abs=0.6)
    assert np.abs(flow_of_mirror[centre] - expected[centre]).mean() < 0.3


def test_n_frames_give_n_minus_one_flows_and_one_frame_is_an_error():
    frames = shifted_pair(1, 0) + shifted_pair(1, 0)
    assert OpticalFlow(algorithm="dis")(dict(imgs=frames))["flows"].shape[0] == 3
    with pytest.raises(ValueError, match="at least 2 frames"):
        OpticalFlow()(dict(imgs=frames[:1]))


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="farneback"):
        OpticalFlow(algorithm="raft")
    assert tvl1_available()  # opencv-contrib is a requirement of the project


def test_transform_survives_pickling_for_dataloader_workers():
    import pickle

    transform = pickle.loads(pickle.dumps(OpticalFlow(algorithm="dis")))
    assert transform(dict(imgs=shifted_pair(1, 0)))["flows"].shape == (1, 64, 64, 2)


@pytest.mark.parametrize("algorithm", ["farneback", "dis", "tvl1"])
def test_pairs_computed_on_several_threads_equal_the_serial_ones(algorithm):
    if algorithm == "tvl1" and not tvl1_available():
        pytest.skip("TV-L1 needs opencv-contrib (cv2.optflow)")
    from gm_plugins.preprocess.transforms.flow import compute_flow, make_flow_function

    rng = np.random.default_rng(1)
    clip = [
        np.ascontiguousarray(np.roll(f, t, axis=1)) for t, f in enumerate(shifted_pair(2, 1) * 5)
    ]
    clip += [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)]
    flow_function = make_flow_function(algorithm)
    serial = compute_flow(clip, flow_function, threads=1)
    threaded = compute_flow(clip, flow_function, threads=3)
    assert serial.shape == (10, 64, 64, 2)
    np.testing.assert_array_equal(threaded, serial)
    assert np.abs(serial).max() > 0.5  # a real flow, not zeros
