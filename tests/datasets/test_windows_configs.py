"""Every shipped config samples by time and cuts windows in seconds, with the paper's meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from gm_plugins.datasets.windows import WindowSpec, window_starts

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(p for p in CONFIGS.rglob("*.py") if p.name != "default_runtime.py")


def _windows(cfg: Config) -> dict[str, dict]:
    """loader name -> the window dict of its dataset."""
    found = {}
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        dataset = cfg.get(loader, {}).get("dataset", {})
        if "window" in dataset:
            found[loader] = dataset["window"]
    return found


@pytest.fixture(scope="module")
def configs() -> dict[str, Config]:
    return {str(path.relative_to(CONFIGS)): Config.fromfile(str(path)) for path in SHIPPED}


def test_every_decoder_samples_by_time_and_every_window_is_in_seconds(configs):
    decoders = windows = 0
    for name, cfg in configs.items():
        for step in cfg.get("preprocess_pipeline") or []:
            if step["type"] == "DecodeFrames":
                decoders += 1
                assert "frame_step" not in step and step["target_fps"] == 6.0, name
        for loader, window in _windows(cfg).items():
            windows += 1
            assert window.get("unit", "seconds") == "seconds", (name, loader)
            assert "frame_step" not in window, (name, loader)
            WindowSpec(**window)  # valid
    assert decoders >= 8 and windows >= 30  # the check did look at the shipped configs


def test_paper_configs_cut_twelve_one_second_windows_every_five_seconds(configs):
    cfg = configs["gm/two-stream_r50-concat-fusion_12x30f_gm3.py"]
    for window in _windows(cfg).values():
        spec = WindowSpec(**window)
        # A 60 s recording sampled at 6 fps holds 361 frames (0 to 60 s).
        assert window_starts(361, 6.0, spec) == list(range(0, 331, 30))
        assert spec.num_flows(6.0) == 6
    skeleton = configs["baselines/stgcn_joint-motion_12x150f_gm3.py"]
    for window in _windows(skeleton).values():
        spec = WindowSpec(**window)
        assert window_starts(361, 6.0, spec) == list(range(0, 331, 30))
        assert spec.num_flows(6.0) == 30  # 5 s, T = 31 skeletons


def test_demo_configs_keep_their_window_counts(configs):
    two_stream = _windows(configs["gm/two-stream_r18-3stage-concat-fusion_demo_gm-synthetic.py"])
    skeleton = _windows(
        configs["baselines/stgcn_c16-s6_joint-motion_5s-windows_demo_gm-synthetic.py"]
    )
    frames = 120  # a 20 s synthetic video at 6 fps
    test = WindowSpec(**two_stream["test_dataloader"])
    assert len(window_starts(frames, 6.0, test)) == 19 and test.num_flows(6.0) == 6
    assert len(window_starts(frames, 6.0, WindowSpec(**two_stream["train_dataloader"]))) == 38
    assert len(window_starts(frames, 6.0, WindowSpec(**skeleton["test_dataloader"]))) == 5
    assert len(window_starts(frames, 6.0, WindowSpec(**skeleton["train_dataloader"]))) == 30
