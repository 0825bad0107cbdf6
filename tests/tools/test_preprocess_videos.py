"""tools/preprocess_videos.py: cache layout, resuming, atomic writes, skip-and-report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from gm_plugins.datasets import cache
from gm_plugins.datasets.cache import is_cached, read_cached_video
from tests.datasets.transforms.conftest import tiny_models  # noqa: F401  (session fixture)
from tests.datasets.transforms.model_configs import (
    textured_frames,
    write_pipeline_config,
    write_video,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "preprocess_videos", REPO_ROOT / "tools/preprocess_videos.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dataset(tmp_path, tiny_models):  # noqa: F811
    """DATA/subjects.csv with two good videos and one broken file, plus a pipeline config."""
    data = tmp_path / "data"
    write_video(data / "videos/s0.mp4", textured_frames(10, seed=0))
    write_video(data / "videos/s1.mp4", textured_frames(10, seed=1))
    (data / "videos/s2.mp4").write_bytes(b"\x00broken" * 50)
    rows = ["subject_id,label,environment,video"] + [
        f"s{i},{label},sheet,videos/s{i}.mp4" for i, label in enumerate(("WMs", "FMs", "PR"))
    ]
    (data / "subjects.csv").write_text("\n".join(rows) + "\n")
    config = write_pipeline_config(tmp_path / "preprocess.py", tiny_models)
    return data, config, tmp_path / "cache"


def run(config, data, out, *extra):
    return load_tool().main(
        [str(config), "--data-root", str(data), "--out", str(out), "--quiet", *extra]
    )


def test_bad_video_is_reported_and_skipped_and_the_rest_is_cached(dataset, capsys):
    data, config, out = dataset
    assert run(config, data, out) == 1
    captured = capsys.readouterr()
    assert "2 video(s) preprocessed" in captured.out and "1 failed" in captured.out
    assert "s2 failed" in captured.err and "s2.mp4" in captured.err
    assert is_cached(out, "s0") and is_cached(out, "s1") and not is_cached(out, "s2")
    video = read_cached_video(out, "s0")
    assert video.frames.shape == (4, 24, 24, 3) and video.flow.shape == (3, 24, 24, 2)
    meta = video.meta
    assert meta["frame_indices"] == [0, 3, 6, 9] and meta["frame_step"] == 3
    assert (
        meta["total_frames"] == 10 and meta["out_size"] == 24 and meta["video"] == "videos/s0.mp4"
    )
    assert meta["label"] == "WMs" and meta["flow"]["algorithm"] == "farneback"
    assert {"mode", "matrix", "matrices", "body_frame", "fallback"} <= set(meta["alignment"])
    matrices = np.load(out / "s0" / cache.MATRICES_FILE)
    np.testing.assert_allclose(matrices[0], meta["alignment"]["matrix"], atol=1e-6)


def test_rerun_skips_finished_videos(dataset, capsys):
    data, config, out = dataset
    run(config, data, out)
    stamp = (out / "s0" / cache.META_FILE).stat().st_mtime_ns
    capsys.readouterr()
    (data / "subjects.csv").write_text(
        (data / "subjects.csv").read_text().replace("s2,PR,sheet,videos/s2.mp4\n", "")
    )
    assert run(config, data, out) == 0
    assert "0 video(s) preprocessed" in capsys.readouterr().out
    assert (out / "s0" / cache.META_FILE).stat().st_mtime_ns == stamp


def test_a_cache_refuses_videos_of_another_chain(dataset, tmp_path, capsys):
    data, config, out = dataset
    run(config, data, out)
    other = Config.fromfile(str(config))
    other.preprocess_pipeline[2]["out_size"] = 32  # e.g. an ablation's chain
    other_config = tmp_path / "other.py"
    other.dump(str(other_config))
    capsys.readouterr()
    assert run(other_config, data, out) == 2
    error = capsys.readouterr().err
    assert str(out) in error and "step 2 (PoseAlignment): out_size=24 -> 32" in error
    assert "use another --out" in error
    assert run(config, data, out) == 1  # the original chain still resumes (s2 stays broken)


def test_interrupted_write_leaves_nothing_that_looks_finished(dataset, monkeypatch):
    data, config, out = dataset
    real_save = np.save

    def save_then_die(path, array, *args, **kwargs):
        if str(path).endswith(cache.FLOW_FILE):
            raise KeyboardInterrupt  # as if the run were killed half-way through a video
        return real_save(path, array, *args, **kwargs)

    monkeypatch.setattr(cache.np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(config, data, out)
    assert not is_cached(out, "s0")
    assert not any(is_cached(out, path.name) for path in out.iterdir())
    monkeypatch.undo()
    assert run(config, data, out) == 1  # resumes: s0 and s1 done, s2 still broken
    assert is_cached(out, "s0") and is_cached(out, "s1")


def test_failing_video_mid_chain_leaves_no_folder(dataset, monkeypatch):
    data, config, out = dataset
    from gm_plugins.datasets.transforms import preprocess

    real = preprocess.cache_record

    def fail_for_s1(results, video, *args):
        if video.endswith("s1.mp4"):
            raise RuntimeError("simulated failure after preprocessing")
        return real(results, video, *args)

    monkeypatch.setattr(preprocess, "cache_record", fail_for_s1)
    assert run(config, data, out) == 1
    assert is_cached(out, "s0") and not (out / "s1").exists()


def test_two_workers_give_the_same_cache(dataset, tmp_path):
    data, config, out = dataset
    assert run(config, data, out) == 1
    parallel = tmp_path / "parallel"
    assert run(config, data, parallel, "--workers", "2") == 1
    for subject in ("s0", "s1"):
        np.testing.assert_array_equal(
            read_cached_video(out, subject).frames, read_cached_video(parallel, subject).frames
        )
        assert json.loads((parallel / subject / "meta.json").read_text())["subject_id"] == subject


def test_missing_table_or_pipeline_is_a_clear_error(dataset, tmp_path, capsys):
    data, config, out = dataset
    assert run(config, tmp_path / "nowhere", out) == 2
    assert "subjects.csv" in capsys.readouterr().err
    empty = tmp_path / "empty.py"
    empty.write_text("default_scope = 'mmaction'\n")
    assert run(empty, data, out) == 2
    assert "preprocess_pipeline" in capsys.readouterr().err
