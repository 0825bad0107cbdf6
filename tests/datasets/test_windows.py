"""Window arithmetic on the sampled timeline: windows in seconds, positions in sampled frames."""

import numpy as np
import pytest

from gm_plugins.datasets.windows import (
    WindowSpec,
    round_half_up,
    window_positions,
    window_starts,
)


def test_paper_windows_on_a_60s_video_at_6_fps():
    spec = WindowSpec()  # 12 windows starting every 5 s, each 1 s long
    assert window_starts(361, 6.0, spec) == list(range(0, 360, 30))
    assert spec.num_flows(6.0) == 6 and spec.duration(6.0) == 1.0
    # The 12th window covers 55-56 s: sampled frames 330 to 336.
    assert len(window_starts(337, 6.0, spec)) == 12
    assert len(window_starts(336, 6.0, spec)) == 11


def test_windows_in_seconds_do_not_depend_on_the_camera():
    spec = WindowSpec(start_stride=0.5, span=1.0, num_windows=None)
    for fps in (25.0, 30.0, 50.0, 60.0):  # the source rate plays no part in seconds
        assert window_starts(120, 6.0, spec, fps=fps) == list(range(0, 114, 3))
        assert spec.num_flows(6.0, fps=fps) == 6


def test_old_frame_windows_use_the_source_rate():
    spec = WindowSpec(start_stride=150, span=30, num_windows=12, unit="frames", frame_step=5)
    # At 30 fps sampled at 6 fps, 150 and 30 frames are the paper's 5 s and 1 s ...
    assert window_starts(361, 6.0, spec, fps=30.0) == window_starts(361, 6.0, WindowSpec())
    assert spec.num_flows(6.0, fps=30.0) == 6
    # ... while at 25 fps they last 6 s and 1.2 s: the camera-dependent windows of old configs.
    assert window_starts(361, 6.0, spec, fps=25.0)[:3] == [0, 36, 72]
    assert spec.num_flows(6.0, fps=25.0) == 7
    with pytest.raises(ValueError, match="source fps"):
        spec.num_flows(6.0)


def test_a_frame_step_without_unit_means_frames_as_in_old_configs():
    assert WindowSpec().unit == "seconds"
    assert WindowSpec(start_stride=150, span=30, frame_step=5).unit == "frames"
    assert WindowSpec(start_stride=1, span=1, frame_step=5, unit="seconds").unit == "seconds"


def test_strides_and_spans_round_to_the_nearest_sampled_frame():
    spec = WindowSpec(start_stride=0.5, span=1.2, num_windows=None)
    # At 5 fps a 0.5 s stride is 2.5 frames: starts at 0, 2.5, 5, 7.5 round half up.
    assert window_starts(20, 5.0, spec) == [0, 3, 5, 8, 10, 13]
    assert spec.num_flows(5.0) == 6
    assert [round_half_up(v) for v in (0.5, 1.5, 2.5, 12.5, 12.4999)] == [1, 2, 3, 13, 12]


def test_last_window_must_fit_entirely():
    spec = WindowSpec(start_stride=1.0, span=1.0, num_windows=None)
    # a 1 s window at 6 fps needs 7 frames: start .. start + 6
    assert window_starts(19, 6.0, spec) == [0, 6, 12]
    assert window_starts(6, 6.0, spec) == []


def test_num_windows_caps_and_offset_shifts():
    spec = WindowSpec(start_stride=1.0, span=1.0, num_windows=2, offset=0.5)
    assert window_starts(200, 6.0, spec) == [3, 9]


def test_window_positions_are_consecutive_sampled_frames():
    assert window_positions(30, 6).tolist() == list(range(30, 37))
    assert window_positions(30, 6, num_frames=37).dtype == np.int64
    with pytest.raises(ValueError, match="does not fit in 36 sampled frames"):
        window_positions(30, 6, num_frames=36)


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError, match="unit"):
        WindowSpec(unit="minutes")
    with pytest.raises(ValueError, match="offset"):
        WindowSpec(offset=-1)
    with pytest.raises(ValueError, match="num_windows"):
        WindowSpec(num_windows=0)
    with pytest.raises(ValueError, match="shorter than one sampled frame"):
        WindowSpec(span=0.05).num_flows(6.0)
    with pytest.raises(ValueError, match=r"start_stride .* shorter than one sampled frame"):
        window_starts(100, 6.0, WindowSpec(start_stride=0.1))
