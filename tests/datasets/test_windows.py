import numpy as np
import pytest

from gm_plugins.datasets.windows import WindowSpec, window_positions, window_starts


def test_paper_windows_on_a_60s_video():
    spec = WindowSpec()  # 150-frame stride, 30-frame span, 12 windows, step 5
    starts = window_starts(1800, 30.0, spec)
    assert starts == list(range(0, 1800, 150))
    assert spec.num_flows(30.0) == 6


def test_windows_in_seconds_follow_the_frame_rate():
    spec = WindowSpec(start_stride=5, span=1, num_windows=None, frame_step=5, unit="seconds")
    assert window_starts(1800, 30.0, spec) == list(range(0, 1800 - 30, 150))
    assert window_starts(900, 15.0, spec)[:3] == [0, 75, 150]
    assert spec.num_flows(15.0) == 3


def test_last_window_must_fit_entirely():
    spec = WindowSpec(start_stride=10, span=30, num_windows=None, frame_step=5)
    # a window needs frames start .. start + 30, i.e. 31 frames
    assert window_starts(61, 30.0, spec) == [0, 10, 20, 30]
    assert window_starts(30, 30.0, spec) == []


def test_num_windows_caps_and_offset_shifts():
    spec = WindowSpec(start_stride=10, span=10, num_windows=2, frame_step=5, offset=5)
    assert window_starts(200, 30.0, spec) == [5, 15]


def test_window_positions_map_source_frames_to_cache():
    frame_indices = np.arange(0, 100, 5)
    positions = window_positions(frame_indices, start=20, num_flows=3, step=5)
    assert positions.tolist() == [4, 5, 6, 7]


def test_window_positions_explain_a_misaligned_start():
    with pytest.raises(ValueError, match="multiples of the cache's frame step"):
        window_positions(np.arange(0, 100, 5), start=12, num_flows=3, step=5)


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError, match="unit"):
        WindowSpec(unit="minutes")
    with pytest.raises(ValueError, match="shorter than one frame step"):
        WindowSpec(span=3, frame_step=5).num_flows(30.0)
