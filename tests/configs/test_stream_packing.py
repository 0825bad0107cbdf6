"""One packer for one or two streams, and every classifier config feeds its model its streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmaction.registry import TRANSFORMS
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose

from gm_plugins.compat import library_scope
from gm_plugins.datasets import GMDataset
from gm_plugins.datasets.transforms.loading import LoadCachedWindow, PackStreamInputs
from tests.datasets.fake_cache import write_fake_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CLASSIFIER_CONFIGS = sorted(
    path
    for folder in ("gm", "baselines", "confounding", "backbones", "benchmark")
    for path in CONFIGS.glob(f"{folder}/*.py")
)
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")

RGB = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
FLOW = np.linspace(-1, 1, 6 * 4 * 4 * 2, dtype=np.float32).reshape(6, 4, 4, 2)


def window(**streams) -> dict:
    return dict(label=2, subject_id="s007", window_index=3, window_start=12, **streams)


def build(cfg: dict):
    with library_scope("mmaction"):
        return TRANSFORMS.build(ConfigDict(cfg))


def test_a_one_stream_window_packs_only_that_stream():
    pack = build(dict(type="PackStreamInputs"))
    rgb = pack(window(rgb=RGB))
    assert set(rgb["inputs"]) == {"rgb"}
    assert torch.equal(rgb["inputs"]["rgb"], torch.from_numpy(RGB).permute(0, 3, 1, 2))
    assert rgb["inputs"]["rgb"].dtype == torch.uint8
    flow = pack(window(flow=FLOW))
    assert set(flow["inputs"]) == {"flow"}
    assert torch.equal(flow["inputs"]["flow"], torch.from_numpy(FLOW).permute(0, 3, 1, 2))
    sample = flow["data_samples"]
    assert int(sample.gt_label) == 2 and sample.metainfo["subject_id"] == "s007"
    assert (sample.metainfo["window_index"], sample.metainfo["window_start"]) == (3, 12)


def test_a_two_stream_window_packs_both():
    packed = build(dict(type="PackStreamInputs"))(window(rgb=RGB, flow=FLOW))
    assert list(packed["inputs"]) == ["rgb", "flow"]
    assert packed["inputs"]["rgb"].shape == (2, 3, 4, 4)
    assert packed["inputs"]["flow"].shape == (6, 2, 4, 4)


def test_named_streams_select_and_a_missing_stream_is_an_error():
    flow_only = build(dict(type="PackStreamInputs", streams=("flow",)))
    assert set(flow_only(window(rgb=RGB, flow=FLOW))["inputs"]) == {"flow"}
    with pytest.raises(KeyError, match="'flow' is missing; load it first"):
        flow_only(window(rgb=RGB))
    with pytest.raises(KeyError, match="neither 'rgb' nor 'flow'"):
        PackStreamInputs()(window())
    with pytest.raises(ValueError, match="non-empty subset"):
        PackStreamInputs(streams=("depth",))


@pytest.fixture(scope="module")
def fake_cache(tmp_path_factory) -> tuple[Path, Path]:
    return write_fake_dataset(tmp_path_factory.mktemp("packing"))


@pytest.fixture(scope="module")
def first_window(fake_cache) -> dict:
    """What GMDataset hands a pipeline for its first window."""
    data, cache = fake_cache
    # The fake cache runs at 5 fps: 1.2 s = 6 flow fields, as 1 s at 6 fps.
    window = dict(start_stride=1.0, span=1.2, num_windows=None)
    dataset = GMDataset("subjects.csv", str(cache), data_root=str(data), window=window)
    return dataset.get_data_info(0)


def test_the_loader_reads_only_the_streams_asked_for(fake_cache):
    _, cache = fake_cache
    results = dict(cache_root=str(cache), subject_id="s001", frame_positions=np.arange(5, 12))
    flow = LoadCachedWindow(streams=("flow",))(dict(results))
    assert "rgb" not in flow and flow["flow"].shape == (6, 16, 16, 2)
    assert flow["img_shape"] == (16, 16)
    rgb = LoadCachedWindow(rgb_frames=3, streams=("rgb",))(dict(results))
    assert "flow" not in rgb and rgb["rgb"][:, 0, 0, 0].tolist() == [17, 18, 19]  # middle 3
    with pytest.raises(ValueError, match="non-empty subset"):
        LoadCachedWindow(streams=())


def _model_streams(model: dict) -> set[str]:
    return {stream for stream in ("rgb", "flow") if model.get(f"{stream}_backbone")}


@pytest.mark.parametrize("path", CLASSIFIER_CONFIGS, ids=lambda path: path.stem)
def test_every_classifier_config_packs_exactly_its_models_streams(path, first_window):
    cfg = Config.fromfile(str(path))
    streams = _model_streams(cfg.model)
    if not streams:  # the skeleton baseline reads keypoints, not frames and flow
        assert cfg.model.type == "RecognizerGCN"
        return
    rgb_frames = set()
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        with library_scope("mmaction"):
            pipeline = Compose(dataset.pipeline)
        inputs = pipeline(dict(first_window, test_mode=dataset.get("test_mode", False)))["inputs"]
        assert set(inputs) == streams, (loader, set(inputs))
        if "flow" in inputs:
            assert inputs["flow"].shape == (6, 2, 16, 16)
        if "rgb" in inputs:
            rgb_frames.add(inputs["rgb"].shape[0])
    assert len(rgb_frames) <= 1, rgb_frames  # trained and tested on the same number of frames
