"""The cache: safe ids, exact flow quantisation, atomic replace, recovery, chain records."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gm_plugins.datasets import cache
from gm_plugins.datasets.cache import (
    CacheEntryWriter,
    CacheFormatError,
    check_subject_id,
    claim_cache,
    dequantise_flow,
    is_cached,
    quantise_flow,
    read_cached_video,
    read_meta,
    recover_cache,
    subject_id_problem,
    write_cached_video,
)


def entry(num_frames: int = 3, size: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(
        frames=rng.integers(0, 255, (num_frames, size, size, 3), dtype=np.uint8),
        flow_quantised=rng.integers(0, 255, (num_frames - 1, size, size, 2), dtype=np.uint8),
        matrices=np.repeat(np.eye(2, 3, dtype=np.float32)[None], num_frames, 0),
        meta=dict(frame_indices=list(range(num_frames)), fps=30.0, label="WMs"),
    )


def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "subject_id", ["", " ", ".", "..", "a/b", "../data", "a\\b", ".staging~x", " s1", "s1\n"]
)
def test_unsafe_subject_ids_are_refused_and_nothing_is_deleted(tmp_path, subject_id):
    root = tmp_path / "cache"
    write_cached_video(root, "s0", **entry())
    (tmp_path / "user_video.mp4").write_bytes(b"precious")
    assert subject_id_problem(subject_id) is not None
    with pytest.raises(ValueError, match="subject_id"):
        write_cached_video(root, subject_id, **entry())
    assert (tmp_path / "user_video.mp4").read_bytes() == b"precious"
    assert is_cached(root, "s0")
    assert sorted(p.name for p in root.iterdir()) == ["s0"]


@pytest.mark.parametrize("subject_id", ["infant_007", "a.b", "P-12 (twin)", "é1"])
def test_ordinary_subject_ids_are_accepted(subject_id):
    assert subject_id_problem(subject_id) is None
    assert check_subject_id(subject_id) == subject_id


def test_zero_flow_is_exactly_zero_and_negated_flow_is_exact():
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 8, (5, 6, 6, 2)).astype(np.float32)
    flow[0] = 0.0
    quantised = quantise_flow(flow, bound=20.0)
    assert (quantised[0] == 128).all() and (dequantise_flow(quantised[0]) == 0.0).all()
    negated = quantise_flow(-flow, bound=20.0)
    np.testing.assert_array_equal(negated.astype(int), 256 - quantised.astype(int))
    np.testing.assert_array_equal(dequantise_flow(negated), -dequantise_flow(quantised))
    error = np.abs(dequantise_flow(quantised) * 20.0 - np.clip(flow, -20, 20))
    assert error.max() <= 20.0 / 254 + 1e-6


def test_chunked_writer_equals_whole_array_writer(tmp_path):
    values = entry(num_frames=7, size=5)
    write_cached_video(tmp_path / "a", "s0", **values)
    with CacheEntryWriter(tmp_path / "b", "s0", 7, 5) as writer:
        for start in (0, 3, 6):
            writer.add_frames(values["frames"][start : start + 3])
        writer.add_quantised_flow(values["flow_quantised"][:4])
        writer.add_quantised_flow(values["flow_quantised"][4:])
        writer.commit(values["matrices"], values["meta"])
    for name in (cache.FRAMES_FILE, cache.FLOW_FILE, cache.MATRICES_FILE, cache.META_FILE):
        assert (tmp_path / "a/s0" / name).read_bytes() == (tmp_path / "b/s0" / name).read_bytes()
    video = read_cached_video(tmp_path / "b", "s0")
    np.testing.assert_array_equal(video.frames, values["frames"])
    assert video.meta["format"] == cache.CACHE_FORMAT and video.meta["num_frames"] == 7


def test_incomplete_entry_is_refused_and_leaves_no_trace(tmp_path):
    with (
        pytest.raises(ValueError, match="of 3 rows written"),
        CacheEntryWriter(tmp_path, "s0", 3, 4) as writer,
    ):
        writer.add_frames(entry()["frames"][:2])
        writer.add_quantised_flow(entry()["flow_quantised"])
        writer.commit(entry()["matrices"], entry()["meta"])
    assert list(tmp_path.iterdir()) == []


def test_failed_replacement_keeps_the_finished_entry(tmp_path):
    write_cached_video(tmp_path, "s0", **entry(seed=1))
    before = (tmp_path / "s0" / cache.FRAMES_FILE).read_bytes()
    with (
        pytest.raises(RuntimeError, match="model crashed"),
        CacheEntryWriter(tmp_path, "s0", 3, 4) as writer,
    ):
        writer.add_frames(entry(seed=2)["frames"])
        raise RuntimeError("model crashed")
    assert (tmp_path / "s0" / cache.FRAMES_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0"]


def test_replacement_swaps_in_the_new_entry(tmp_path):
    write_cached_video(tmp_path, "s0", **entry(seed=1))
    write_cached_video(tmp_path, "s0", **entry(seed=2))
    np.testing.assert_array_equal(read_cached_video(tmp_path, "s0").frames, entry(seed=2)["frames"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0"]


def test_recover_puts_back_an_entry_whose_replacement_was_killed(tmp_path):
    write_cached_video(tmp_path, "s0", **entry(seed=1))
    pid = dead_pid()
    host = cache.socket.gethostname()
    # the state a SIGKILL leaves between "old renamed aside" and "new renamed in"
    os.replace(tmp_path / "s0", tmp_path / f"{cache.REPLACED_PREFIX}s0~{host}~{pid}~abcd")
    (tmp_path / f"{cache.STAGING_PREFIX}s0~{host}~{pid}~ef01").mkdir()
    (tmp_path / f"{cache.STAGING_PREFIX}s1~{host}~{pid}~ef02").mkdir()
    alive = tmp_path / f"{cache.STAGING_PREFIX}s2~{host}~{os.getpid()}~ef03"
    alive.mkdir()
    actions = recover_cache(tmp_path)
    assert any("restored s0" in line for line in actions) and len(actions) == 3
    np.testing.assert_array_equal(read_cached_video(tmp_path, "s0").frames, entry(seed=1)["frames"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s0", alive.name])


def test_recover_deletes_the_old_entry_once_its_replacement_arrived(tmp_path):
    write_cached_video(tmp_path, "s0", **entry(seed=2))
    old = tmp_path / f"{cache.REPLACED_PREFIX}s0~{cache.socket.gethostname()}~{dead_pid()}~abcd"
    write_cached_video(tmp_path / "elsewhere", "s0", **entry(seed=1))
    os.replace(tmp_path / "elsewhere" / "s0", old)
    recover_cache(tmp_path)
    assert not old.exists()
    np.testing.assert_array_equal(read_cached_video(tmp_path, "s0").frames, entry(seed=2)["frames"])


def test_chain_record_detects_a_retrained_checkpoint(tmp_path):
    checkpoint = tmp_path / "seg.pth"
    checkpoint.write_bytes(b"weights-1")
    steps = [dict(type="DecodeFrames"), dict(type="BackgroundRemoval", checkpoint=str(checkpoint))]
    claim_cache(tmp_path / "cache", steps)
    claim_cache(tmp_path / "cache", steps)  # same chain, same files: accepted
    checkpoint.write_bytes(b"weights-2")  # same path, same size, other weights
    with pytest.raises(ValueError, match=r"seg\.pth changed since the cache was written"):
        claim_cache(tmp_path / "cache", steps)
    with pytest.raises(ValueError, match=r"step 0 \(DecodeFrames\): target_fps"):
        claim_cache(tmp_path / "cache", [dict(type="DecodeFrames", target_fps=5), steps[1]])


def test_old_caches_are_refused_with_the_fix(tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / cache.PIPELINE_FILE).write_text(json.dumps([dict(type="DecodeFrames")]))
    with pytest.raises(CacheFormatError, match=r"delete .* and preprocess again"):
        claim_cache(tmp_path / "cache", [dict(type="DecodeFrames")])
    write_cached_video(tmp_path / "cache", "s0", **entry())
    meta_path = tmp_path / "cache/s0" / cache.META_FILE
    meta = json.loads(meta_path.read_text())
    del meta["format"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CacheFormatError, match="older gm_plugins"):
        read_meta(tmp_path / "cache", "s0")
