"""DecodeFrames and iter_sampled_frames: frames sampled by time on one grid for every camera rate;
bad videos give errors naming the file."""

from __future__ import annotations

import inspect
import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

from gm_plugins.datasets.windows import WindowSpec, window_starts
from gm_plugins.preprocess.transforms import (
    DecodeFrames,
    VideoDecodeError,
    iter_sampled_frames,
    probe_video,
)
from tests.preprocess.transforms.model_configs import textured_frames, write_video

CAMERA_RATES = (25, 30, 50, 60)


def numbered_frames(count: int) -> list[np.ndarray]:
    """Flat frames whose red level tells their index (50 + 10 t) and blue level 200 - 10 t."""
    return [np.full((48, 64, 3), (50 + 10 * t, 100, 200 - 10 * t), np.uint8) for t in range(count)]


def motion_level(seconds: np.ndarray) -> np.ndarray:
    """The red level of the synthetic motion at a time: 20 + 80 per second."""
    return 20 + 80 * np.asarray(seconds, np.float64)


def write_clip(path, fps: float, seconds: float, size: tuple[int, int] = (32, 24)):
    """The same motion (red level rising with time) recorded at ``fps``: H.264 MP4 via PyAV."""
    width, height = size
    count = round(fps * seconds)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(count):
            red = round(float(motion_level(index / fps)))
            image = np.full((height, width, 3), (red, 90, 160), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", numbered_frames(16), fps=30)


@pytest.fixture(scope="module")
def same_motion(tmp_path_factory):
    """fps -> the same 2.4 s of motion recorded at 25, 30, 50 and 60 fps."""
    folder = tmp_path_factory.mktemp("rates")
    return {fps: write_clip(folder / f"motion_{fps}fps.mp4", fps, 2.4) for fps in CAMERA_RATES}


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_paper_rate_keeps_every_fifth_frame_of_30_fps_in_rgb(video, backend):
    results = DecodeFrames(target_fps=6, backend=backend)(dict(filename=str(video)))
    assert results["frame_inds"].tolist() == [0, 5, 10, 15]
    assert results["frame_inds"].dtype == np.int64
    assert results["timestamps"].dtype == np.float64
    np.testing.assert_allclose(results["timestamps"], [0, 1 / 6, 2 / 6, 3 / 6])
    assert results["sample_fps"] == 6 and results["frame_step"] == 5
    assert results["total_frames"] == 16 and results["fps"] == pytest.approx(30)
    assert results["original_shape"] == (48, 64) == results["img_shape"]
    frame = results["imgs"][2]
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    red, _, blue = frame.reshape(-1, 3).mean(0)  # source frame 10 in RGB order
    assert red == pytest.approx(150, abs=4) and blue == pytest.approx(100, abs=4)


def test_frame_step_is_an_explicit_alternative(video):
    results = DecodeFrames(frame_step=3)(dict(filename=str(video)))
    assert results["frame_inds"].tolist() == [0, 3, 6, 9, 12, 15]
    assert results["sample_fps"] == pytest.approx(10) and results["frame_step"] == 3
    np.testing.assert_allclose(results["timestamps"], np.arange(6) * 0.1)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_every_camera_rate_is_sampled_on_the_same_6_fps_grid(same_motion, backend):
    expected_indices = {
        25: [0, 4, 8, 13, 17, 21, 25, 29, 33, 38, 42, 46, 50, 54, 58],  # nearest to k * 25 / 6
        30: list(range(0, 75, 5)),
        50: [0, 8, 17, 25, 33, 42, 50, 58, 67, 75, 83, 92, 100, 108, 117],
        60: list(range(0, 150, 10)),
    }
    grid = np.arange(15) / 6  # 2.4 s: samples at 0, 1/6, ..., 14/6 s
    starts = {}
    for fps, path in same_motion.items():
        results = DecodeFrames(target_fps=6.0, backend=backend)(dict(filename=str(path)))
        assert results["frame_inds"].tolist() == expected_indices[fps], fps
        assert results["sample_fps"] == 6.0 and results["fps"] == pytest.approx(fps)
        assert results["frame_step"] == {25: None, 30: 5, 50: None, 60: 10}[fps]
        # Each timestamp is its source frame's time, within half a source frame of the grid ...
        np.testing.assert_allclose(results["timestamps"], results["frame_inds"] / fps)
        assert np.abs(results["timestamps"] - grid).max() <= 0.5 / fps + 1e-9
        # ... and the decoded frame shows the motion at that time.
        red = np.array([frame[..., 0].mean() for frame in results["imgs"]])
        np.testing.assert_allclose(red, motion_level(results["timestamps"]), atol=4)
        spec = WindowSpec(start_stride=0.5, span=1.0, num_windows=None)
        starts[fps] = window_starts(len(results["imgs"]), results["sample_fps"], spec)
        assert spec.num_flows(results["sample_fps"]) == 6
        assert spec.duration(results["sample_fps"]) == pytest.approx(1.0)
    assert all(found == [0, 3, 6] for found in starts.values()), starts


def test_iter_sampled_frames_streams_one_frame_at_a_time(same_motion):
    frames = iter_sampled_frames(same_motion[25], target_fps=6.0)
    assert inspect.isgenerator(frames)
    first = next(frames)
    assert first[0] == 0 and first[1] == 0.0 and first[2].shape == (24, 32, 3)
    # While suspended, no generator in the chain holds more than the frame it hands out.
    pending, seen, held = [frames], 0, []
    while pending:
        generator = pending.pop()
        seen += 1
        for value in generator.gi_frame.f_locals.values():
            if isinstance(value, np.ndarray) and value.ndim == 3:
                held.append(value)
            elif inspect.isgenerator(value) and value.gi_frame is not None:
                pending.append(value)
            assert not (isinstance(value, list) and value and isinstance(value[0], np.ndarray))
        if generator.gi_yieldfrom is not None:
            pending.append(generator.gi_yieldfrom)
    assert seen >= 3 and len(held) <= 1  # the public generator, the sampler, the decoder
    rest = list(itertools.islice(frames, 3))
    assert [index for index, _, _ in rest] == [4, 8, 13]
    np.testing.assert_allclose([time for _, time, _ in rest], [4 / 25, 8 / 25, 13 / 25])
    frames.close()


def test_iter_sampled_frames_supports_frame_step_and_decord(video):
    by_step = [index for index, _, _ in iter_sampled_frames(video, frame_step=4)]
    assert by_step == [0, 4, 8, 12]
    with_decord = list(iter_sampled_frames(video, 10.0, backend="decord"))
    assert [index for index, _, _ in with_decord] == [0, 3, 6, 9, 12, 15]
    assert with_decord[1][2][..., 0].mean() == pytest.approx(80, abs=4)  # source frame 3


def test_probe_video_reads_the_header(same_motion):
    info = probe_video(same_motion[50])
    assert info["fps"] == pytest.approx(50) and (info["width"], info["height"]) == (32, 24)
    assert info["total_frames"] == 120 and info["duration"] == pytest.approx(2.4, abs=0.05)


def test_120_fps_works_and_slower_than_target_is_refused(tmp_path):
    fast = write_clip(tmp_path / "fast.mp4", 120, 1.0)
    results = DecodeFrames(target_fps=6.0)(dict(filename=str(fast)))
    assert results["frame_inds"].tolist() == [0, 20, 40, 60, 80, 100]
    np.testing.assert_allclose(results["timestamps"], np.arange(6) / 6)
    slow = write_clip(tmp_path / "slow.mp4", 1, 8.0)
    with pytest.raises(
        VideoDecodeError, match=r"slow\.mp4: recorded at 1 fps, more than 5% below .*=6"
    ):
        DecodeFrames(target_fps=6.0)(dict(filename=str(slow)))
    with pytest.raises(VideoDecodeError, match=r"slow\.mp4.*below.*Record at 6 fps or more"):
        next(iter_sampled_frames(slow))
    # With an explicit frame step a 1 fps video is used as it is.
    assert DecodeFrames(frame_step=2)(dict(filename=str(slow)))["sample_fps"] == 0.5


def test_implausibly_high_rates_are_refused(tmp_path):
    broken = write_clip(tmp_path / "broken_rate.mp4", 1200, 0.01)  # 12 frames stated at 1200 fps
    assert probe_video(broken)["fps"] == pytest.approx(1200)  # probing only reports it
    for decode in (DecodeFrames(), DecodeFrames(frame_step=1)):
        with pytest.raises(VideoDecodeError, match=r"broken_rate\.mp4: .*above 1000 fps.*ffmpeg"):
            decode(dict(filename=str(broken)))


@pytest.mark.parametrize("stated", [0, None, float("nan")])
def test_unknown_rates_name_the_file_and_the_fix(video, monkeypatch, stated):
    # FFmpeg guesses a rate for nearly any file, so the unknown rate is simulated.
    from gm_plugins.preprocess.transforms import decoding

    monkeypatch.setattr(decoding, "_pyav_fps", lambda stream: stated)
    expected = r"clip\.mp4: the video does not state a usable frame rate.*ffmpeg"
    with pytest.raises(VideoDecodeError, match=expected):
        DecodeFrames()(dict(filename=str(video)))
    with pytest.raises(VideoDecodeError, match=expected):
        DecodeFrames(frame_step=5)(dict(filename=str(video)))
    with pytest.raises(VideoDecodeError, match=expected):
        next(iter_sampled_frames(video))


def test_grayscale_video_gets_three_equal_channels(tmp_path):
    path = tmp_path / "gray.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "gray"
        for value in (10, 120, 240):
            image = np.full((24, 32), value, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = DecodeFrames(target_fps=30)(dict(filename=str(path)))["imgs"]
    assert len(frames) == 3 and frames[1].shape == (24, 32, 3)
    assert (frames[1] == frames[1][..., :1]).all() and abs(int(frames[1][0, 0, 0]) - 120) <= 2


def test_unreadable_video_names_the_file(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4.*cannot decode"):
        DecodeFrames()(dict(filename=str(path)))
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4.*cannot decode"):
        probe_video(path)


def test_empty_missing_and_audio_only_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    absent = tmp_path / "absent.mp4"
    sound = tmp_path / "sound.mka"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        samples.sample_rate = 8000
        for packet in stream.encode(samples):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for call in (probe_video, lambda p: DecodeFrames()(dict(filename=str(p)))):
        with pytest.raises(VideoDecodeError, match=r"empty\.mp4: the file is empty"):
            call(empty)
        with pytest.raises(VideoDecodeError, match=r"absent\.mp4: video file not found"):
            call(absent)
        with pytest.raises(VideoDecodeError, match=r"sound\.mka: no video stream"):
            call(sound)


def test_too_short_videos_are_explained(tmp_path):
    path = write_video(tmp_path / "single.mp4", textured_frames(1))
    with pytest.raises(VideoDecodeError, match=r"single\.mp4.*at least 2"):
        DecodeFrames(frame_step=1)(dict(filename=str(path)))
    # A video of several frames can still be too short once sampled: 4 frames at 30 fps.
    short = write_video(tmp_path / "short.mp4", textured_frames(4))
    with pytest.raises(VideoDecodeError, match=r"short\.mp4: 4 source frame.*longer video"):
        DecodeFrames(target_fps=6)(dict(filename=str(short)))
    with pytest.raises(VideoDecodeError, match="smaller frame_step"):
        DecodeFrames(frame_step=5)(dict(filename=str(short)))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="frame_step"):
        DecodeFrames(frame_step=0)
    for rate in (0, -6, None, 5000):
        with pytest.raises(ValueError, match="target_fps"):
            DecodeFrames(target_fps=rate)
    with pytest.raises(ValueError, match="backend"):
        DecodeFrames(backend="opencv")
    assert repr(DecodeFrames()) == "DecodeFrames(target_fps=6, backend='pyav', min_frames=2)"
    assert repr(DecodeFrames(frame_step=5)) == (
        "DecodeFrames(frame_step=5, backend='pyav', min_frames=2)"
    )


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_large_frames_are_shrunk_while_decoding(tmp_path, backend):
    # 256x128 frames of a bright block on the left half: shrunk to 128x64, the block keeps its
    # place and level, and the record says how the coordinates relate to the video's pixels.
    frames = []
    for t in range(12):
        frame = np.full((128, 256, 3), 30, np.uint8)
        frame[32:96, 16 + t : 112 + t] = (220, 180, 140)
        frames.append(frame)
    path = write_video(tmp_path / "large.mp4", frames)
    full = DecodeFrames(target_fps=6, backend=backend)(dict(filename=str(path)))
    small = DecodeFrames(target_fps=6, backend=backend, max_side=128)(dict(filename=str(path)))
    assert small["frame_inds"].tolist() == full["frame_inds"].tolist() == [0, 5, 10]
    assert small["imgs"][0].shape == (64, 128, 3) and small["img_shape"] == (64, 128)
    assert small["original_shape"] == (64, 128) and small["source_shape"] == (128, 256)
    assert small["decode_scale"] == pytest.approx(0.5)
    assert full["decode_scale"] == 1.0 and full["source_shape"] == full["original_shape"]
    # The same picture at half size: area averaging of the full-size decode, within codec noise.
    import cv2

    for big, shrunk in zip(full["imgs"], small["imgs"], strict=True):
        expected = cv2.resize(big, (128, 64), interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(shrunk.astype(int) - expected).mean() < 3
    # A frame at most max_side long is decoded unchanged.
    same = DecodeFrames(target_fps=6, backend=backend, max_side=256)(dict(filename=str(path)))
    for a, b in zip(full["imgs"], same["imgs"], strict=True):
        np.testing.assert_array_equal(a, b)
    streamed = list(iter_sampled_frames(path, 6, backend, max_side=100))
    assert [frame.shape for _, _, frame in streamed] == [(50, 100, 3)] * 3


def test_max_side_is_checked_and_shown():
    for bad in (0, 10, 63, 640.5, True, "640"):
        with pytest.raises(ValueError, match="max_side"):
            DecodeFrames(max_side=bad)
    assert repr(DecodeFrames(max_side=640)) == (
        "DecodeFrames(target_fps=6, backend='pyav', min_frames=2, max_side=640)"
    )


@pytest.mark.parametrize("fps", [5.9, 5.88])
def test_a_rate_within_the_tolerance_below_the_target_keeps_every_frame(tmp_path, fps):
    """5.9 fps at a target of 6: every frame, counted as one 1/6 s step (windows unchanged)."""
    path = write_clip(tmp_path / "nearly.mp4", fps, 3.0)
    results = DecodeFrames(target_fps=6.0)(dict(filename=str(path)))
    total = results["total_frames"]
    assert results["frame_inds"].tolist() == list(range(total))
    assert results["sample_fps"] == 6.0 and results["frame_step"] == 1
    np.testing.assert_allclose(results["timestamps"], np.arange(total) / results["fps"])
    assert WindowSpec(span=1.0).num_flows(results["sample_fps"]) == 6
    assert [k for k, _, _ in iter_sampled_frames(path, target_fps=6.0)] == list(range(total))


def test_a_rate_just_beyond_the_tolerance_is_refused_with_what_to_do(tmp_path):
    path = write_clip(tmp_path / "five.mp4", 5, 2.0)
    with pytest.raises(VideoDecodeError, match=r"five\.mp4: recorded at 5 fps.*target_fps <= 5"):
        DecodeFrames(target_fps=6.0)(dict(filename=str(path)))
