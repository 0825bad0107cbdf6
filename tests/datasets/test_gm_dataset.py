import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gm_plugins.datasets import GMDataset
from gm_plugins.datasets import cache as cache_module
from gm_plugins.datasets import gm_dataset as gm_dataset_module
from gm_plugins.datasets.cache import (
    quantise_flow,
    read_cached_video,
    read_meta,
    write_cached_video,
)
from gm_plugins.datasets.subjects import SubjectsError
from tests.datasets.fake_cache import write_fake_dataset

PIPELINE = [dict(type="LoadCachedWindow"), dict(type="PackStreamInputs")]
# The fake cache holds every 2nd frame of 10 fps (5 fps): 1 s strides, 0.8 s = 4 flow fields.
WINDOW = dict(start_stride=1.0, span=0.8, num_windows=None)


@pytest.fixture
def fake(tmp_path):
    return write_fake_dataset(tmp_path)


def build(data, cache, **kwargs):
    args = dict(
        ann_file="subjects.csv",
        data_root=str(data),
        cache_root=str(cache),
        pipeline=PIPELINE,
        window=WINDOW,
    )
    args.update(kwargs)
    return GMDataset(**args)


def test_windows_of_every_infant(fake):
    dataset = build(*fake)
    # 30 cached frames at 5 fps; windows need 5 (4 flows): starts 0, 5, ..., 25
    assert len(dataset) == 6 * 6
    assert dataset.subject_ids == [f"s{k:03d}" for k in range(6)]
    info = dataset.get_data_info(7)
    assert info["subject_id"] == "s001" and info["window_index"] == 1
    assert info["frame_positions"].tolist() == [5, 6, 7, 8, 9]
    assert info["window_start"] == 10 and info["window_time"] == pytest.approx(1.0)
    assert info["sample_fps"] == pytest.approx(5.0)  # derived: fps 10 / frame_step 2


def test_old_windows_in_frames_still_cut_the_same_windows(fake):
    seconds = build(*fake)
    frames = build(*fake, window=dict(start_stride=10, span=8, num_windows=None, frame_step=2,
                                      unit="frames"))  # fmt: skip
    assert len(frames) == len(seconds)
    for index in range(len(seconds)):
        assert np.array_equal(
            frames.get_data_info(index)["frame_positions"],
            seconds.get_data_info(index)["frame_positions"],
        )


def test_a_packed_window_holds_the_right_frames_and_flow(fake):
    sample = build(*fake)[7]  # subject 1 (label FMs), window starting at frame 10
    rgb, flow = sample["inputs"]["rgb"], sample["inputs"]["flow"]
    assert rgb.shape == (1, 3, 16, 16) and rgb.dtype == torch.uint8
    assert flow.shape == (4, 2, 16, 16) and flow.dtype == torch.float32
    assert int(rgb[0, 0, 0, 0]) == 10 + 7  # middle frame: cached position 7
    assert torch.allclose(flow[:, 0], torch.tensor(2 / 4), atol=1e-2)  # label 1 -> 2 px of 4
    assert torch.allclose(flow[:, 1], torch.tensor(-1 / 4), atol=1e-2)
    data_sample = sample["data_samples"]
    assert int(data_sample.gt_label) == 1
    assert data_sample.metainfo["subject_id"] == "s001"
    assert data_sample.metainfo["window_start"] == 10


def test_rgb_only_packing_and_several_rgb_frames(fake):
    pipeline = [
        dict(type="LoadCachedWindow", rgb_frames=3),
        dict(type="PackStreamInputs", streams=("rgb",)),
    ]
    sample = build(*fake, pipeline=pipeline)[0]
    assert set(sample["inputs"]) == {"rgb"}
    assert sample["inputs"]["rgb"][:, 0, 0, 0].tolist() == [1, 2, 3]


def test_splits_never_share_an_infant(fake):
    data, cache = fake
    kwargs = dict(num_folds=2, fold_seed=0, test_fold=0)
    train = set(build(data, cache, split="train", **kwargs).subject_ids)
    test = set(build(data, cache, split="test", **kwargs).subject_ids)
    assert train and test and not train & test
    assert train | test == {f"s{k:03d}" for k in range(6)}


def test_missing_cache_fails_at_build_time_with_the_fix(fake, tmp_path):
    data, _ = fake
    with pytest.raises(FileNotFoundError, match=r"tools/data/preprocess_videos\.py"):
        build(data, tmp_path / "nowhere")


def test_short_video_and_bad_table_are_explained(fake, tmp_path):
    data, cache = fake
    with pytest.raises(ValueError, match=r"s000: .*6\.00 s\) is shorter than one window"):
        build(data, cache, window=dict(WINDOW, span=10.0))
    (data / "bad.csv").write_text("subject_id,label,video\ns000,Happy,videos/s000.mp4\n")
    with pytest.raises(SubjectsError, match=r"(?s)bad\.csv.*label 'Happy'"):
        build(data, cache, ann_file="bad.csv")
    with pytest.raises(SubjectsError, match=r"subjects\.csv: not found"):
        build(tmp_path, cache)


# -- one time base for every camera ---------------------------------------------------------------


def write_time_based_cache(root, rates, seconds=4.0, size=8):
    """subjects.csv + cache of one infant per camera rate, sampled at 6 fps as DecodeFrames does."""
    data, cache = root / "data", root / "cache"
    data.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, fps in enumerate(rates):
        subject_id = f"cam{fps}"
        rows.append(dict(subject_id=subject_id, label="WMs", video=f"{subject_id}.mp4"))
        count = int(seconds * 6)
        indices = np.floor(np.arange(count) * fps / 6 + 0.5).astype(int)
        frames = np.full((count, size, size, 3), k, np.uint8)
        meta = dict(
            frame_indices=indices.tolist(),
            timestamps=(indices / fps).tolist(),
            fps=float(fps),
            sample_fps=6.0,
            total_frames=int(seconds * fps),
        )
        write_cached_video(
            cache,
            subject_id,
            frames,
            quantise_flow(np.zeros((count - 1, size, size, 2)), 4.0),
            np.tile(np.eye(2, 3, dtype=np.float32), (count, 1, 1)),
            meta,
        )
    with open(data / "subjects.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return data, cache


def test_mixed_camera_rates_give_equal_windows_and_batches(tmp_path):
    data, cache = write_time_based_cache(tmp_path, (25, 30, 50, 60))
    dataset = build(data, cache, window=dict(start_stride=1.0, span=1.0, num_windows=None))
    by_subject: dict[str, list[dict]] = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        by_subject.setdefault(info["subject_id"], []).append(info)
    assert sorted(by_subject) == ["cam25", "cam30", "cam50", "cam60"]
    # 24 sampled frames (4 s at 6 fps): 1 s windows start at 0, 6, 12 s ... whatever the camera.
    for windows in by_subject.values():
        assert [w["frame_positions"][0] for w in windows] == [0, 6, 12]
        assert all(len(w["frame_positions"]) == 7 for w in windows)  # 6 flow fields
        times = [w["window_time"] for w in windows]
        np.testing.assert_allclose(times, [0, 1, 2], atol=0.5 / 25)
    assert [w["window_start"] for w in by_subject["cam25"]] == [0, 25, 50]
    assert [w["window_start"] for w in by_subject["cam60"]] == [0, 60, 120]
    batch = torch.stack([dataset[i]["inputs"]["flow"] for i in range(len(dataset))])
    assert batch.shape == (12, 6, 2, 8, 8)


def test_old_caches_of_different_rates_cannot_be_mixed(tmp_path):
    """frame_step caches depend on the camera: 25 fps / 5 is 5 fps, 30 fps / 5 is 6 fps."""
    data, cache = write_time_based_cache(tmp_path, (25, 30))
    for subject_id in ("cam25", "cam30"):
        video = read_cached_video(cache, subject_id)
        meta = {k: v for k, v in video.meta.items() if k not in ("sample_fps", "timestamps")}
        meta.update(frame_indices=list(range(0, 5 * len(video.frames), 5)), frame_step=5)
        write_cached_video(cache, subject_id, np.asarray(video.frames), np.asarray(video.flow),
                           np.load(video.path / "matrices.npy"), meta)  # fmt: skip
        assert "sample_fps" not in read_meta(cache, subject_id)
    with pytest.raises(ValueError, match="sampled at different rates") as error:
        build(data, cache, window=dict(start_stride=1.0, span=1.0, num_windows=None))
    message = str(error.value)
    assert "5 flow fields: cam25 (5 fps)" in message and "6 flow fields: cam30 (6 fps)" in message
    assert "target_fps" in message


def test_a_cache_without_a_time_base_is_explained(tmp_path):
    data, cache = write_time_based_cache(tmp_path, (30,))
    video = read_cached_video(cache, "cam30")
    meta = {k: v for k, v in video.meta.items() if k not in ("sample_fps", "timestamps")}
    write_cached_video(cache, "cam30", np.asarray(video.frames), np.asarray(video.flow),
                       np.load(video.path / "matrices.npy"), meta)  # fmt: skip
    with pytest.raises(ValueError, match=r"cam30: meta\.json has no sample_fps"):
        build(data, cache)


# -- videos whose preprocessing fell back ---------------------------------------------------------


def mark_fallbacks(cache, reasons: dict[str, tuple[str, str]]) -> None:
    """Rewrite cached videos with ``(where, reason)``: where is 'quality' or legacy 'alignment'."""
    for subject_id, (where, reason) in reasons.items():
        video = read_cached_video(cache, subject_id)
        meta = dict(video.meta, **{where: dict(fallback=reason)})
        write_cached_video(cache, subject_id, np.asarray(video.frames), np.asarray(video.flow),
                           np.load(video.path / "matrices.npy"), meta)  # fmt: skip


def test_fallback_videos_are_left_out_and_reported_once(fake, monkeypatch):
    data, cache = fake
    mark_fallbacks(cache, {"s001": ("quality", "no_infant"), "s003": ("quality", "no_infant"),
                           "s004": ("alignment", "alignment_failed")})  # fmt: skip
    logged = []
    monkeypatch.setattr(gm_dataset_module, "print_log", lambda msg, **kw: logged.append(msg))
    dataset = build(data, cache)
    assert dataset.subject_ids == ["s000", "s002", "s005"]
    assert len(logged) == 1
    assert "left out 3 of 6 videos" in logged[0]
    assert "alignment_failed: 1, no_infant: 2" in logged[0]
    kept = build(data, cache, exclude_fallbacks=False)
    assert kept.subject_ids == [f"s{k:03d}" for k in range(6)]


def test_a_split_of_only_fallbacks_is_an_error(fake):
    data, cache = fake
    mark_fallbacks(cache, {"s002": ("quality", "no_infant"), "s005": ("quality", "dark")})
    with pytest.raises(ValueError, match=r"all 2 videos .* \(dark: 1, no_infant: 1\).*"
                                         r"exclude_fallbacks=False"):  # fmt: skip
        build(data, cache, subjects=["s002", "s005"])


def test_a_bad_cache_entry_is_refused_before_anything_is_written(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="flow must be uint8"):
        write_cached_video(
            tmp_path,
            "s9",
            frames,
            np.zeros((3, 8, 8, 2), np.uint8),
            np.zeros((3, 2, 3)),
            dict(frame_indices=[0, 1, 2], fps=5),
        )
    assert not any(tmp_path.iterdir())  # nothing half-written left behind
    flow = quantise_flow(np.full((2, 8, 8, 2), 50.0), bound=20.0)
    assert flow.max() == 255
    write_cached_video(
        tmp_path, "s9", frames, flow, np.zeros((3, 2, 3)), dict(frame_indices=[0, 1, 2], fps=5)
    )
    video = read_cached_video(tmp_path, "s9")
    assert video.meta["num_frames"] == 3 and video.flow.shape == (2, 8, 8, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["s9"]


# -- a write that stops half-way ------------------------------------------------------------------


def entry_bytes(cache, subject_id: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((cache / subject_id).iterdir())}


def other_entry(cache, subject_id: str) -> dict:
    """``write_cached_video`` arguments for an entry unlike the cached one (brighter, still)."""
    video = read_cached_video(cache, subject_id)
    return dict(
        frames=np.asarray(video.frames) + 100,
        flow_quantised=np.full_like(np.asarray(video.flow), 128),
        matrices=np.load(video.path / "matrices.npy"),
        meta=dict(video.meta),
    )


class DiskFullError(OSError):
    pass


def fail(*args, **kwargs):
    raise DiskFullError("no space left on device")


def fail_renaming(prefix: str):
    """An ``os.replace`` that fails when the renamed folder's name starts with ``prefix``."""
    replace = os.replace

    def patched(source, destination):
        if Path(destination if prefix == cache_module.REPLACED_PREFIX else source).name.startswith(
            prefix
        ):
            raise DiskFullError(f"renaming {source} failed")
        return replace(source, destination)

    return patched


INTERRUPTIONS = {
    # after the frames: appending the flow fails
    "flow": (cache_module.CacheEntryWriter, "add_quantised_flow", fail),
    # after both arrays: saving the matrices fails
    "matrices": (cache_module.np, "save", fail),
    # every array written: meta.json, which marks the entry finished, fails
    "meta": (cache_module, "write_json_atomic", fail),
    # the staged entry is complete: moving the old entry aside fails
    "aside": (cache_module.os, "replace", fail_renaming(cache_module.REPLACED_PREFIX)),
    # the staged entry is complete (and the old one aside): renaming it into place fails
    "swap_in": (cache_module.os, "replace", fail_renaming(cache_module.STAGING_PREFIX)),
}


def assert_window_7_is_the_fake_one(data, cache):
    """Window 7 (s001, second window) as ``write_fake_dataset`` wrote it, read afresh."""
    sample = build(data, cache)[7]
    assert int(sample["inputs"]["rgb"][0, 0, 0, 0]) == 10 + 7
    assert torch.allclose(sample["inputs"]["flow"][:, 0], torch.tensor(2 / 4), atol=1e-2)


@pytest.mark.parametrize("stage", sorted(INTERRUPTIONS))
def test_an_interrupted_rewrite_leaves_the_finished_entry_as_it_was(fake, monkeypatch, stage):
    data, cache = fake
    before = entry_bytes(cache, "s001")
    replacement = other_entry(cache, "s001")  # brighter frames, zero flow
    with monkeypatch.context() as patch:
        patch.setattr(*INTERRUPTIONS[stage])
        with pytest.raises(DiskFullError):
            write_cached_video(cache, "s001", **replacement)
    assert cache_module.is_cached(cache, "s001")
    assert entry_bytes(cache, "s001") == before
    assert sorted(p.name for p in cache.iterdir()) == [f"s{k:03d}" for k in range(6)]  # no staging
    assert_window_7_is_the_fake_one(data, cache)  # the dataset opens the entry only now
    # the same write without the fault does replace the entry
    write_cached_video(cache, "s001", **replacement)
    np.testing.assert_array_equal(read_cached_video(cache, "s001").frames, replacement["frames"])


@pytest.mark.parametrize("stage", sorted(set(INTERRUPTIONS) - {"aside"}))
def test_an_interrupted_first_write_leaves_nothing_that_reads_as_finished(fake, monkeypatch, stage):
    data, cache = fake
    entry = other_entry(cache, "s005")
    shutil.rmtree(cache / "s005")
    with monkeypatch.context() as patch:
        patch.setattr(*INTERRUPTIONS[stage])
        with pytest.raises(DiskFullError):
            write_cached_video(cache, "s005", **entry)
    assert not cache_module.is_cached(cache, "s005")
    assert sorted(p.name for p in cache.iterdir()) == [f"s{k:03d}" for k in range(5)]
    with pytest.raises(FileNotFoundError, match=r"s005.*tools/data/preprocess_videos\.py"):
        build(data, cache)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked writer")
def test_a_writer_killed_between_its_renames_loses_no_finished_entry(fake):
    """SIGKILL-like exit after the old entry went aside and before the new one came in."""
    data, cache = fake
    before = entry_bytes(cache, "s001")
    replacement = other_entry(cache, "s001")
    pid = os.fork()
    if pid == 0:  # the writer: dies the moment it renames its staged entry into place
        try:
            replace = os.replace

            def die_on_swap_in(source, destination):
                if Path(source).name.startswith(cache_module.STAGING_PREFIX):
                    os._exit(9)
                return replace(source, destination)

            os.replace = die_on_swap_in
            write_cached_video(cache, "s001", **replacement)
        finally:
            os._exit(1)  # never reached when the kill came where it should
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 9
    left = sorted(p.name for p in cache.iterdir() if p.name.startswith("."))
    assert [name.split("~")[0] + "~" for name in left] == [
        cache_module.REPLACED_PREFIX, cache_module.STAGING_PREFIX
    ]  # fmt: skip
    assert not cache_module.is_cached(cache, "s001")  # the complete new entry is not counted
    actions = cache_module.recover_cache(cache)
    assert any("restored s001" in line for line in actions)
    assert sorted(p.name for p in cache.iterdir()) == [f"s{k:03d}" for k in range(6)]
    assert entry_bytes(cache, "s001") == before
    assert_window_7_is_the_fake_one(data, cache)


@pytest.mark.slow
def test_online_slow_path_preprocesses_missing_videos(tmp_path):
    from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
    from tests.preprocess.transforms import model_configs

    data = tmp_path / "data"
    config = GeneratorConfig(subjects=3, seconds=2.0, fps=15, width=64, height=48, seed=5,
                             prep_subjects=0)  # fmt: skip
    generate_dataset(data, config, workers=1, progress=False)
    seg = model_configs.write_seg_config(tmp_path, "unet")
    pose = model_configs.write_pose_config(tmp_path, "heatmap")
    preprocess = [
        dict(type="DecodeFrames", target_fps=5.0),
        dict(type="BackgroundRemoval", config=str(seg), checkpoint=str(
            model_configs.write_checkpoint("mmseg", seg, tmp_path / "seg.pth"))),
        dict(type="PoseAlignment", config=str(pose), out_size=32, checkpoint=str(
            model_configs.write_checkpoint("mmpose", pose, tmp_path / "pose.pth"))),
        dict(type="OpticalFlow"),
    ]  # fmt: skip
    cache = tmp_path / "cache"
    window = dict(start_stride=0.6, span=0.6, num_windows=None)
    dataset = build(data, cache, window=window, preprocess_pipeline=preprocess,
                    exclude_fallbacks=False)  # fmt: skip
    assert sorted(p.name for p in cache.iterdir()) == [
        "preprocess_pipeline.json",  # the online path records its chain like the offline one
        "s0000",
        "s0001",
        "s0002",
    ]
    sample = dataset[0]
    assert sample["inputs"]["rgb"].shape == (1, 3, 32, 32)
    assert sample["inputs"]["flow"].shape == (3, 2, 32, 32)
    # a second build reads the cache written by the first
    assert len(build(data, cache, window=window, exclude_fallbacks=False)) == len(dataset)


def test_a_rewritten_entry_is_read_afresh_by_a_dataset_that_had_it_open(fake):
    """The open-video cache must not keep serving the memory maps of a replaced entry."""
    data, cache = fake
    dataset = build(data, cache)
    assert int(dataset[7]["inputs"]["rgb"][0, 0, 0, 0]) == 10 + 7  # s001 now open
    replacement = other_entry(cache, "s001")
    write_cached_video(cache, "s001", **replacement)
    rgb = dataset[7]["inputs"]["rgb"]
    assert int(rgb[0, 0, 0, 0]) == 10 + 7 + 100  # the brighter replacement
