"""BackgroundRemoval with tiny randomly initialised mmseg models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from gm_plugins.compat import library_scope
from gm_plugins.preprocess.model_runners import SegmentationRunner
from gm_plugins.preprocess.transforms import BackgroundRemoval, CheckpointMismatchError
from gm_plugins.preprocess.transforms.background import mask_box, multiply_by_mask, smooth_in_time
from tests.preprocess.transforms.model_configs import textured_frames

pytestmark = pytest.mark.slow


def removal(tiny_models, name="unet", **kwargs) -> BackgroundRemoval:
    config, checkpoint = tiny_models[name]
    return BackgroundRemoval(**{"config": str(config), "checkpoint": str(checkpoint), **kwargs})


def test_soft_mask_multiplies_the_frames(tiny_models):
    frames = textured_frames(5)
    results = removal(tiny_models, batch_size=2)(dict(imgs=[f.copy() for f in frames]))
    masks = results["body_masks"]
    assert masks.shape == (5, 48, 64) and masks.dtype == np.float32
    assert masks.min() >= 0 and masks.max() <= 1 and masks.std() > 0
    expected = (frames[3] * masks[3][..., None]).round().astype(np.uint8)
    np.testing.assert_array_equal(results["imgs"][3], expected)
    assert results["body_boxes"].shape == (5, 4) and results["body_box"].shape == (4,)
    assert "original_imgs" not in results
    kept = removal(tiny_models, keep_original=True)(dict(imgs=[f.copy() for f in frames]))
    np.testing.assert_array_equal(kept["original_imgs"][3], frames[3])


def test_mask_mode_none_keeps_the_frames_but_finds_the_infant(tiny_models):
    frames = textured_frames(3)
    soft = removal(tiny_models)(dict(imgs=[f.copy() for f in frames]))
    kept = removal(tiny_models, mask_mode="none")(dict(imgs=[f.copy() for f in frames]))
    for frame, unchanged in zip(frames, kept["imgs"], strict=True):
        np.testing.assert_array_equal(unchanged, frame)
    np.testing.assert_array_equal(kept["body_masks"], soft["body_masks"])
    np.testing.assert_array_equal(kept["body_box"], soft["body_box"])


def test_masks_match_mmseg_reading_the_frame_from_disk(tiny_models, tmp_path):
    """Frames are RGB; mmseg models expect what its loader gives (BGR): same answer as mmseg."""
    from mmseg.apis import inference_model

    frame = textured_frames(1)[0]
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    transform = removal(tiny_models)
    ours = transform(dict(imgs=[frame]))["body_masks"][0]
    with library_scope("mmseg"):
        reference = inference_model(transform.runner.model, str(path)).seg_logits.data
    np.testing.assert_allclose(ours, reference.softmax(0)[1].numpy(), atol=1e-5)
    swapped = transform(dict(imgs=[frame[..., ::-1].copy()]))["body_masks"][0]
    assert np.abs(swapped - ours).max() > 1e-3  # the model does see the channel order


def test_hard_mask_is_binary_and_an_empty_frame_has_no_box(tiny_models):
    frames = textured_frames(3)
    hard = removal(tiny_models, mask_mode="hard", threshold=0.5)(dict(imgs=list(frames)))
    assert set(np.unique(hard["body_masks"])) <= {0.0, 1.0}
    nothing = removal(tiny_models, mask_mode="hard", threshold=1.0)(dict(imgs=list(frames)))
    assert not nothing["body_masks"].any() and not np.stack(nothing["imgs"]).any()
    assert np.isnan(nothing["body_box"]).all() and np.isnan(nothing["body_boxes"]).all()


def test_models_are_loaded_once_and_scope_is_kept(tiny_models, restore_default_scope):
    DefaultScope.get_instance("gm-test", scope_name="mmaction")
    first, second = removal(tiny_models), removal(tiny_models, mask_mode="hard")
    first(dict(imgs=textured_frames(2)))
    assert first.runner.model is second.runner.model
    assert DefaultScope.get_current_instance().scope_name == "mmaction"


def test_checkpoint_of_another_model_names_both_files(tiny_models):
    config, _ = tiny_models["fastscnn"]
    _, wrong_checkpoint = tiny_models["unet"]
    transform = BackgroundRemoval(config=str(config), checkpoint=str(wrong_checkpoint))
    with pytest.raises(CheckpointMismatchError) as error:
        transform(dict(imgs=textured_frames(1)))
    assert str(wrong_checkpoint) in str(error.value) and str(config) in str(error.value)


def test_missing_files_and_bad_arguments(tiny_models, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mmseg checkpoint not found: .*absent\.pth"):
        removal(tiny_models, checkpoint=str(tmp_path / "absent.pth"))
    with pytest.raises(FileNotFoundError, match=r"mmseg config not found: .*absent\.py"):
        removal(tiny_models, config=str(tmp_path / "absent.py"))
    with pytest.raises(ValueError, match="mask_mode"):
        removal(tiny_models, mask_mode="fuzzy")
    assert "mask_mode='soft'" in repr(removal(tiny_models))


def test_temporal_smoothing_averages_neighbouring_frames():
    masks = np.zeros((5, 2, 2), np.float32)
    masks[2] = 1.0
    smoothed = smooth_in_time(masks, 3)
    np.testing.assert_allclose(smoothed[:, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_array_equal(smooth_in_time(masks, 1), masks)


def test_mask_box_is_half_open_pixel_box():
    mask = np.zeros((10, 10), np.float32)
    mask[2:5, 3:8] = 0.9
    np.testing.assert_array_equal(mask_box(mask), [3, 2, 8, 5])
    mask[7, 1] = 0.6  # a second blob widens the box; one at the threshold does not count
    mask[9, 9] = 0.5
    np.testing.assert_array_equal(mask_box(mask), [1, 2, 8, 8])
    assert np.isnan(mask_box(np.zeros((4, 4), np.float32))).all()
    # the same box as listing every pixel above the threshold, on random blobs
    rng = np.random.default_rng(0)
    for _ in range(20):
        noisy = (rng.random((30, 40)) > 0.97).astype(np.float32)
        ys, xs = np.nonzero(noisy > 0.5)
        expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [np.nan] * 4
        np.testing.assert_array_equal(mask_box(noisy), expected)


def test_large_frames_meet_the_model_shrunk_and_get_full_size_masks(tiny_models):
    """Above ``max_side`` the model sees the shrunk frame; the mask is enlarged back."""
    frames = textured_frames(2, size=(128, 96))
    shrunk = [cv2.resize(f, (64, 48), interpolation=cv2.INTER_AREA) for f in frames]
    large = removal(tiny_models, max_side=64)(dict(imgs=[f.copy() for f in frames]))
    small = removal(tiny_models)(dict(imgs=shrunk))
    assert large["body_masks"].shape == (2, 96, 128) and large["imgs"][0].shape == (96, 128, 3)
    enlarged = cv2.resize(small["body_masks"][1], (128, 96), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(large["body_masks"][1], enlarged, atol=1e-5)
    expected = (frames[1] * enlarged[..., None]).round().astype(np.uint8)
    assert np.abs(large["imgs"][1].astype(int) - expected).max() <= 1
    # boxes and areas are measured on the full-size masks, in full-size pixels
    np.testing.assert_array_equal(large["body_boxes"][1], mask_box(large["body_masks"][1]))
    assert large["body_areas"][1] == pytest.approx((large["body_masks"][1] > 0.5).mean())
    unshrunk = removal(tiny_models, max_side=None)(dict(imgs=[f.copy() for f in frames]))
    assert np.abs(unshrunk["body_masks"] - large["body_masks"]).max() > 1e-4
    with pytest.raises(ValueError, match="max_side"):
        removal(tiny_models, max_side=0)


def _seg_config_variant(tiny_models, tmp_path, name: str, resize: dict, **preprocessor) -> str:
    """The tiny model's config with another test Resize (and data preprocessor settings)."""
    from mmengine.config import Config

    config, _ = tiny_models[name]
    cfg = Config.fromfile(str(config))
    cfg.test_pipeline = [
        dict(step, **resize) if step["type"] == "Resize" else step for step in cfg.test_pipeline
    ]
    cfg.model.data_preprocessor.update(preprocessor)
    path = tmp_path / f"{name}_{len(list(tmp_path.iterdir()))}.py"
    cfg.dump(str(path))
    return str(path)


@pytest.mark.parametrize(
    ("name", "resize", "preprocessor"),
    [
        ("unet", {}, {}),
        ("fastscnn", {}, {}),
        # the paper profile: a 4:3 frame stretched to a square
        ("unet", dict(scale=(80, 80), keep_ratio=False), {}),
        # a size that needs padding to the divisor, which must be cropped off again
        ("unet", dict(scale=(56, 42), keep_ratio=True), dict(test_cfg=dict(size_divisor=16))),
        # a model fed BGR (no channel conversion in its preprocessor)
        ("fastscnn", dict(scale=(72, 54)), dict(bgr_to_rgb=False)),
    ],
)
def test_fast_path_gives_the_masks_of_the_test_step_path(
    tiny_models, tmp_path, name, resize, preprocessor
):
    config = _seg_config_variant(tiny_models, tmp_path, name, resize, **preprocessor)
    _, checkpoint = tiny_models[name]
    frames = textured_frames(5)
    fast = BackgroundRemoval(config=config, checkpoint=str(checkpoint), batch_size=2)
    slow = BackgroundRemoval(config=config, checkpoint=str(checkpoint), batch_size=2, fast=False)
    ours = fast(dict(imgs=[f.copy() for f in frames]))
    reference = slow(dict(imgs=[f.copy() for f in frames]))
    assert fast.fast and fast.fast_runner is not None and slow.fast_runner is None
    assert ours["body_masks"].shape == (5, 48, 64)
    # folded batch norms and channels-last convolutions: float rounding only
    np.testing.assert_allclose(ours["body_masks"], reference["body_masks"], atol=1e-4)
    assert reference["body_masks"].std() > 1e-4  # the comparison is not between constants
    for mine, theirs in zip(ours["imgs"], reference["imgs"], strict=True):
        assert np.abs(mine.astype(int) - theirs).max() <= 1
    # the batched path itself, on the unchanged network, is exact
    fast._fast_runner = SegmentationRunner(fast.runner.model, 2, optimise=False)
    exact = fast(dict(imgs=[f.copy() for f in frames]))
    np.testing.assert_allclose(exact["body_masks"], reference["body_masks"], atol=1e-6)


def test_fast_path_is_not_used_for_models_it_cannot_run(tiny_models, tmp_path):
    from mmengine.config import Config

    config, checkpoint = tiny_models["unet"]
    cfg = Config.fromfile(str(config))
    cfg.model.test_cfg = dict(mode="slide", crop_size=(32, 32), stride=(24, 24))
    path = tmp_path / "slide.py"
    cfg.dump(str(path))
    transform = BackgroundRemoval(config=str(path), checkpoint=str(checkpoint))
    masks = transform(dict(imgs=textured_frames(2)))["body_masks"]
    assert masks.shape == (2, 48, 64) and transform.fast_runner is None and not transform.fast


@pytest.mark.parametrize(
    ("name", "resize", "preprocessor"),
    [
        ("unet", dict(scale=(80, 80), keep_ratio=False), {}),
        ("unet", dict(scale=(56, 42), keep_ratio=True), dict(test_cfg=dict(size_divisor=16))),
    ],
)
def test_onnxruntime_backend_gives_the_masks_of_pytorch(
    tiny_models, tmp_path, monkeypatch, name, resize, preprocessor
):
    monkeypatch.setenv("GM_PLUGINS_ONNX_CACHE", str(tmp_path / "onnx"))
    config = _seg_config_variant(tiny_models, tmp_path, name, resize, **preprocessor)
    _, checkpoint = tiny_models[name]
    frames = textured_frames(5)
    torch_path = BackgroundRemoval(config=config, checkpoint=str(checkpoint), batch_size=2)
    ort_path = BackgroundRemoval(
        config=config, checkpoint=str(checkpoint), batch_size=2, backend="onnxruntime"
    )
    ours = ort_path(dict(imgs=[f.copy() for f in frames]))
    reference = torch_path(dict(imgs=[f.copy() for f in frames]))
    assert ort_path.fast_runner.backend == "onnxruntime"
    np.testing.assert_allclose(ours["body_masks"], reference["body_masks"], atol=1e-4)
    assert reference["body_masks"].std() > 1e-4
    np.testing.assert_array_equal(ours["body_box"], reference["body_box"])
    # exported once per weights and input size, into the cache, and reused by the next transform
    exported = sorted((tmp_path / "onnx").glob("segmentation-*.onnx"))
    assert len(exported) == 1 and exported[0].with_suffix(".json").is_file()
    modified = exported[0].stat().st_mtime_ns
    again = BackgroundRemoval(config=config, checkpoint=str(checkpoint), backend="onnxruntime")
    np.testing.assert_allclose(
        again(dict(imgs=[f.copy() for f in frames]))["body_masks"], ours["body_masks"], atol=1e-6
    )
    assert exported[0].stat().st_mtime_ns == modified


def test_onnxruntime_backend_exports_again_for_other_weights(tiny_models, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("GM_PLUGINS_ONNX_CACHE", str(tmp_path / "onnx"))
    config, checkpoint = tiny_models["unet"]
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["state_dict"]["decode_head.conv_seg.bias"][1] += 1.0  # the infant class is likelier
    retrained = tmp_path / "retrained.pth"
    torch.save(state, retrained)
    frames = textured_frames(2)
    masks = [
        BackgroundRemoval(config=str(config), checkpoint=str(path), backend="onnxruntime")(
            dict(imgs=[f.copy() for f in frames])
        )["body_masks"]
        for path in (checkpoint, retrained)
    ]
    assert len(list((tmp_path / "onnx").glob("segmentation-*.onnx"))) == 2
    assert np.abs(masks[0] - masks[1]).max() > 1e-3


def test_onnxruntime_backend_refuses_what_it_cannot_run(tiny_models, tmp_path):
    from mmengine.config import Config

    config, checkpoint = tiny_models["unet"]
    with pytest.raises(ValueError, match="fast=True"):
        BackgroundRemoval(config=str(config), backend="onnxruntime", fast=False)
    with pytest.raises(ValueError, match="choose one of"):
        BackgroundRemoval(config=str(config), backend="tensorrt")
    cfg = Config.fromfile(str(config))
    cfg.model.test_cfg = dict(mode="slide", crop_size=(32, 32), stride=(24, 24))
    path = tmp_path / "slide.py"
    cfg.dump(str(path))
    transform = BackgroundRemoval(
        config=str(path), checkpoint=str(checkpoint), backend="onnxruntime"
    )
    with pytest.raises(ValueError, match="backend='pytorch'"):
        transform(dict(imgs=textured_frames(2)))


def test_onnxruntime_backend_falls_back_to_pytorch_for_a_model_onnx_cannot_express(
    tiny_models, tmp_path, monkeypatch
):
    # Fast-SCNN's pyramid pooling at this size: adaptive pooling ONNX cannot export.
    monkeypatch.setenv("GM_PLUGINS_ONNX_CACHE", str(tmp_path / "onnx"))
    config, checkpoint = tiny_models["fastscnn"]
    frames = textured_frames(3)
    transform = BackgroundRemoval(
        config=str(config), checkpoint=str(checkpoint), backend="onnxruntime"
    )
    masks = transform(dict(imgs=[f.copy() for f in frames]))["body_masks"]
    reference = BackgroundRemoval(config=str(config), checkpoint=str(checkpoint))(
        dict(imgs=[f.copy() for f in frames])
    )["body_masks"]
    assert transform.fast_runner.backend == "pytorch"
    np.testing.assert_allclose(masks, reference, atol=1e-5)
    assert not list((tmp_path / "onnx").glob("*.onnx"))  # no half-written export left


def test_multiply_by_mask_rounds_as_numpy_does():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    mask = rng.random((60, 80), dtype=np.float32)
    mask[:10] = 0.5  # products exactly halfway between integers: half to even
    mask[10:20] = 1.0
    mask[20:25] = 0.0
    expected = (frame * mask[..., None]).round().astype(np.uint8)
    got = multiply_by_mask(frame, mask)
    assert got.dtype == np.uint8 and got.shape == frame.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[10:20], frame[10:20])
