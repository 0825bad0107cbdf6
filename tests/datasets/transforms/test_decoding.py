"""DecodeFrames: every frame_step-th frame as RGB; bad videos give errors naming the file."""

from __future__ import annotations

import av
import numpy as np
import pytest

from gm_plugins.datasets.transforms import DecodeFrames, VideoDecodeError

from .model_configs import textured_frames, write_video


def numbered_frames(count: int) -> list[np.ndarray]:
    """Flat frames whose red level tells their index (50 + 10 t) and blue level 200 - 10 t."""
    return [np.full((48, 64, 3), (50 + 10 * t, 100, 200 - 10 * t), np.uint8) for t in range(count)]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", numbered_frames(16), fps=30)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_keeps_every_kth_frame_in_rgb(video, backend):
    results = DecodeFrames(frame_step=5, backend=backend)(dict(filename=str(video)))
    assert results["frame_inds"].tolist() == [0, 5, 10, 15]
    assert results["total_frames"] == 16 and results["fps"] == pytest.approx(30)
    assert results["original_shape"] == (48, 64)
    frame = results["imgs"][2]
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    red, _, blue = frame.reshape(-1, 3).mean(0)  # source frame 10 in RGB order
    assert red == pytest.approx(150, abs=4) and blue == pytest.approx(100, abs=4)


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
    frames = DecodeFrames(frame_step=1)(dict(filename=str(path)))["imgs"]
    assert len(frames) == 3 and frames[1].shape == (24, 32, 3)
    assert (frames[1] == frames[1][..., :1]).all() and abs(int(frames[1][0, 0, 0]) - 120) <= 2


def test_unreadable_video_names_the_file(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4.*cannot decode"):
        DecodeFrames()(dict(filename=str(path)))


def test_empty_and_missing_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4"):
        DecodeFrames()(dict(filename=str(empty)))
    with pytest.raises(VideoDecodeError, match=r"absent\.mp4: video file not found"):
        DecodeFrames()(dict(filename=str(tmp_path / "absent.mp4")))


def test_one_frame_video_is_too_short_for_flow(tmp_path):
    path = write_video(tmp_path / "single.mp4", textured_frames(1))
    with pytest.raises(VideoDecodeError, match=r"single\.mp4.*at least 2"):
        DecodeFrames(frame_step=1)(dict(filename=str(path)))
    # A long enough video can still be too short once subsampled.
    short = write_video(tmp_path / "short.mp4", textured_frames(4))
    with pytest.raises(VideoDecodeError, match="smaller frame_step"):
        DecodeFrames(frame_step=5)(dict(filename=str(short)))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="frame_step"):
        DecodeFrames(frame_step=0)
    with pytest.raises(ValueError, match="backend"):
        DecodeFrames(backend="opencv")
    assert repr(DecodeFrames(frame_step=5)) == (
        "DecodeFrames(frame_step=5, backend='pyav', min_frames=2)"
    )
