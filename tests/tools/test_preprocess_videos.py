"""tools/data/preprocess_videos.py: every bad input gets a clear error or a recorded fallback, the
other videos of the run still finish, and a killed run resumes to a byte-identical cache."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from mmengine.config import Config

from gm_plugins.datasets import cache
from gm_plugins.datasets.cache import is_cached, read_cached_video, read_meta
from gm_plugins.preprocess.jobs import run_preprocessing
from gm_plugins.utils.sharding import parse_shard, shard_of
from tests.preprocess.transforms.conftest import tiny_models  # noqa: F401  (session fixture)
from tests.preprocess.transforms.model_configs import (
    textured_frames,
    write_pipeline_config,
    write_video,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def encode(path: Path, frames: list, fps: float, codec: str, pix_fmt: str) -> Path:
    """Encode RGB frames with any PyAV codec/pixel format (the container from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=round(fps) if fps >= 1 else fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            packets = stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
            container.mux(packets)
        container.mux(stream.encode())
    return path


def frames_of(size: tuple[int, int], count: int, seed: int = 0) -> list:
    return textured_frames(count, size=size, seed=seed)


def write_table(data: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = ["subject_id,label,environment,video"] + [
        f"{i},{label},room,{v}" for i, label, v in rows
    ]
    (data / "subjects.csv").write_text("\n".join(lines) + "\n")


def run(config, data, out, workers: int = 1, labels: bool = True) -> int:
    """What ``tools/data/preprocess_videos.py CONFIG --data-root DATA --out OUT --quiet`` does."""
    return run_preprocessing(
        config, data, out, workers=workers, progress=False, require_labels=labels
    )


@pytest.fixture
def config(tmp_path, tiny_models):  # noqa: F811
    return write_pipeline_config(tmp_path / "preprocess.py", tiny_models)


BAD_VIDEOS = {  # subject -> (file, what the error must say besides the file name)
    "empty": ("v/empty.mp4", "empty"),
    "random": ("v/random.mp4", "cannot decode"),
    "text": ("v/text.mp4", "cannot decode"),
    "truncated": ("v/truncated.mp4", "cannot decode"),
    "one_frame": ("v/one.mp4", "needs at least 2"),
    "two_frames": ("v/two.mp4", "needs at least 2"),
    "fps1": ("v/fps1.mp4", "fps"),
}
GOOD_VIDEOS = ("gray", "tiny", "odd", "portrait", "fps120", "mjpg", "black", "normal")


@pytest.fixture
def awkward_dataset(tmp_path):
    """One video of every awkward kind a user's folder holds."""
    data = tmp_path / "data"
    v = data / "v"
    good = write_video(v / "normal.mp4", frames_of((64, 48), 30))
    (v / "empty.mp4").parent.mkdir(parents=True, exist_ok=True)
    (v / "empty.mp4").write_bytes(b"")
    (v / "random.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    (v / "text.mp4").write_text("this is not a video\n" * 20)
    (v / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    write_video(v / "one.mp4", frames_of((64, 48), 1))
    write_video(v / "two.mp4", frames_of((64, 48), 2))
    encode(v / "fps1.mp4", frames_of((64, 48), 5), 1, "libx264", "yuv420p")
    gray = [
        np.repeat(f.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
        for f in frames_of((64, 48), 20)
    ]
    encode(v / "gray.mkv", gray, 30, "ffv1", "gray")
    write_video(v / "tiny.mp4", frames_of((16, 12), 20))
    encode(v / "odd.mkv", frames_of((63, 47), 20), 30, "ffv1", "yuv444p")
    write_video(v / "portrait.mp4", frames_of((48, 64), 20))
    encode(v / "fps120.mp4", frames_of((64, 48), 120), 120, "libx264", "yuv420p")
    encode(v / "mjpg.avi", frames_of((640, 480), 20), 30, "mjpeg", "yuvj420p")
    write_video(v / "black.mp4", [np.zeros((48, 64, 3), np.uint8)] * 20)
    rows = [(subject, "WMs", video) for subject, (video, _) in BAD_VIDEOS.items()]
    suffix = dict(gray="mkv", odd="mkv", mjpg="avi")
    rows += [(name, "FMs", f"v/{name}.{suffix.get(name, 'mp4')}") for name in GOOD_VIDEOS]
    write_table(data, rows)
    return data


def test_every_awkward_video_gets_a_clear_error_or_a_recorded_fallback(
    awkward_dataset, config, tmp_path, capsys
):
    out = tmp_path / "cache"
    assert run(config, awkward_dataset, out, workers=0) == 1
    captured = capsys.readouterr()
    for subject, (video, words) in BAD_VIDEOS.items():
        assert not is_cached(out, subject)
        block = captured.err.split(f"--- {subject} failed:")[1].split("---")[0]
        assert video.split("/")[1] in block and words in block, (subject, block)
    for subject in GOOD_VIDEOS:
        cached = read_cached_video(out, subject)
        assert cached.frames.shape[1:] == (24, 24, 3), subject
        assert cached.meta["sample_fps"] == 10.0
    gray = read_cached_video(out, "gray").frames
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    times = read_meta(out, "fps120")["timestamps"]
    np.testing.assert_allclose(times, np.arange(len(times)) / 10.0, atol=1 / 240)
    black = read_meta(out, "black")["quality"]
    assert black["fallback"] == "no_infant" and "brightness_median=0" in black["fallback_detail"]
    summary = json.loads((out / "preprocess_summary.json").read_text())
    assert summary["failed"] == len(BAD_VIDEOS) and set(summary["failures"]) == set(BAD_VIDEOS)
    assert summary["fallback_subjects"]["no_infant"][:1] == ["black"]
    assert "fallback(s) 'no_infant'" in captured.out and "black" in captured.out


@pytest.mark.parametrize(
    "row, problem",
    [
        (",WMs,v/normal.mp4", "subject_id is empty"),
        ("..,WMs,v/normal.mp4", "'..'"),
        (".,WMs,v/normal.mp4", "'.'"),
        ("a/b,WMs,v/normal.mp4", "path separator"),
        ("s1,WM,v/normal.mp4", "label"),
        ("s1,,v/normal.mp4", "label"),
        ("s1,WMs,../outside.mp4", "outside"),
        ("s1,WMs,/etc/passwd", "absolute"),
        ("s1,WMs,v/missing.mp4", "missing.mp4"),
        ("s0,FMs,v/normal.mp4", "already used on line 2"),
    ],
)
def test_bad_rows_stop_the_run_before_anything_is_written(tmp_path, config, row, problem, capsys):
    data = tmp_path / "data"
    write_video(data / "v/normal.mp4", frames_of((64, 48), 12))
    (tmp_path / "outside.mp4").write_bytes(b"not yours")
    (data / "subjects.csv").write_text(f"subject_id,label,video\ns0,WMs,v/normal.mp4\n{row}\n")
    out = data / "cache"
    assert run(config, data, out) == 2
    error = capsys.readouterr().err
    assert "line 3" in error and problem in error
    assert not out.exists()
    assert (data / "v/normal.mp4").exists() and (tmp_path / "outside.mp4").exists()


def test_all_bad_rows_are_listed_in_one_error(tmp_path, config, capsys):
    data = tmp_path / "data"
    write_video(data / "v/normal.mp4", frames_of((64, 48), 12))
    rows = ["..,WMs,v/normal.mp4", "s1,XX,v/normal.mp4", "s2,WMs,v/none.mp4"]
    (data / "subjects.csv").write_text("subject_id,label,video\n" + "\n".join(rows) + "\n")
    assert run(config, data, data / "cache") == 2
    error = capsys.readouterr().err
    assert all(f"line {n}" in error for n in (2, 3, 4))


def test_unlabelled_videos_need_the_flag(tmp_path, config, capsys):
    data = tmp_path / "data"
    write_video(data / "v/normal.mp4", frames_of((64, 48), 12))
    (data / "subjects.csv").write_text("subject_id,label,video\nnew,,v/normal.mp4\n")
    assert run(config, data, tmp_path / "cache") == 2
    assert run(config, data, tmp_path / "cache", workers=0, labels=False) == 0
    assert read_meta(tmp_path / "cache", "new")["label"] == ""


def test_a_cache_refuses_videos_of_another_chain_or_a_retrained_model(tmp_path, config, capsys):
    data = tmp_path / "data"
    write_video(data / "v/a.mp4", frames_of((64, 48), 12))
    write_table(data, [("s0", "WMs", "v/a.mp4")])
    out = tmp_path / "cache"
    assert run(config, data, out, workers=0) == 0
    other = Config.fromfile(str(config))
    other.preprocess_pipeline[2]["out_size"] = 32
    other.dump(str(tmp_path / "other.py"))
    capsys.readouterr()
    assert run(tmp_path / "other.py", data, out) == 2
    assert "step 2 (PoseAlignment): out_size=24 -> 32" in capsys.readouterr().err
    checkpoint = Path(Config.fromfile(str(config)).preprocess_pipeline[1]["checkpoint"])
    original = checkpoint.read_bytes()
    try:
        checkpoint.write_bytes(original + b"retrained")
        assert run(config, data, out) == 2
        assert "changed since the cache was written" in capsys.readouterr().err
    finally:
        checkpoint.write_bytes(original)


def test_a_dead_worker_is_a_failed_video_and_the_run_goes_on(tmp_path, config, capsys):
    """A worker killed (as by the kernel's out-of-memory killer) never hangs the run."""
    plugin = tmp_path / "plugins" / "killer_plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(
        "import os, signal\n"
        "from mmaction.registry import TRANSFORMS\n"
        "from mmcv.transforms import BaseTransform\n"
        "@TRANSFORMS.register_module()\n"
        "class DieOnVictim(BaseTransform):\n"
        "    def transform(self, results):\n"
        "        if 'victim' in results['filename']:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return results\n"
    )
    cfg = Config.fromfile(str(config))
    cfg.preprocess_pipeline.insert(1, dict(type="DieOnVictim"))
    cfg.custom_imports = dict(imports=["gm_plugins", "killer_plugin"], allow_failed_imports=False)
    cfg.dump(str(tmp_path / "killer.py"))
    data = tmp_path / "data"
    for name in ("a", "victim", "b", "c"):
        write_video(data / f"v/{name}.mp4", frames_of((64, 48), 12))
    write_table(data, [(n, "WMs", f"v/{n}.mp4") for n in ("a", "victim", "b", "c")])
    sys.path.insert(0, str(plugin.parent))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(plugin.parent), os.environ.get("PYTHONPATH", "")]
    )
    try:
        assert run(tmp_path / "killer.py", data, tmp_path / "cache", workers=2) == 1
    finally:
        sys.path.remove(str(plugin.parent))
    error = capsys.readouterr().err
    assert "victim failed" in error and "SIGKILL" in error
    assert all(is_cached(tmp_path / "cache", n) for n in ("a", "b", "c"))


def entry_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_sigkill_at_a_random_point_then_rerun_gives_a_byte_identical_cache(tmp_path, config):
    data = tmp_path / "data"
    names = [f"s{i}" for i in range(6)]
    for index, name in enumerate(names):
        write_video(data / f"v/{name}.mp4", frames_of((64, 48), 24, seed=index))
    write_table(data, [(n, "PR", f"v/{n}.mp4") for n in names])
    command = [sys.executable, str(REPO_ROOT / "tools/data/preprocess_videos.py"), str(config)]
    reference = tmp_path / "reference"
    subprocess.run(
        [*command, "--data-root", str(data), "--out", str(reference), "--quiet", "--workers", "2"],
        check=True,
    )
    killed = tmp_path / "killed"
    rng = random.Random(int(os.environ.get("GM_KILL_SEED", "7")))
    process = subprocess.Popen(
        [*command, "--data-root", str(data), "--out", str(killed), "--quiet", "--workers", "2"],
        start_new_session=True,
    )
    wanted = rng.randint(1, len(names) - 2)  # some entries done, others in flight
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if killed.is_dir() and sum(is_cached(killed, n) for n in names) >= wanted:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not all(is_cached(killed, n) for n in names), "the run finished before the kill"
    subprocess.run(
        [*command, "--data-root", str(data), "--out", str(killed), "--quiet", "--workers", "2"],
        check=True,
    )
    assert entry_bytes(killed) == entry_bytes(reference)
    assert not [p for p in killed.iterdir() if p.name.startswith(".")]
    assert json.loads((killed / "preprocess_summary.json").read_text())["cached"] == len(names)
    assert read_meta(killed, "s0")["format"] == cache.CACHE_FORMAT


def _videos(data: Path, names: list[str], frames: int = 12) -> None:
    for index, name in enumerate(names):
        write_video(data / f"v/{name}.mp4", frames_of((64, 48), frames, seed=index))
    write_table(data, [(n, "PR", f"v/{n}.mp4") for n in names])


def _tool(config: Path, data: Path, out: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        str(REPO_ROOT / "tools/data/preprocess_videos.py"),
        str(config),
        "--data-root",
        str(data),
        "--out",
        str(out),
        "--quiet",
        "--workers",
        "0",
        *options,
    ]


def _entries(root: Path) -> dict[str, bytes]:
    """Every file of a cache but the run summaries (they describe a run, not the cache)."""
    return {k: v for k, v in entry_bytes(root).items() if not k.startswith("preprocess_summary")}


def test_three_shards_at_once_make_the_cache_of_one_run(tmp_path, config, capsys):
    """Shards 1/3 and 2/3 run as commands while shard 0/3 runs in this process (which spares
    this test a third start of the stack)."""
    data, names = tmp_path / "data", [f"s{i}" for i in range(6)]  # shares 2, 0, 1, 2, 0, 2
    _videos(data, names)
    reference = tmp_path / "reference"
    assert run(config, data, reference, workers=0) == 0
    sharded = tmp_path / "sharded"
    processes = [
        subprocess.Popen(_tool(config, data, sharded, "--shard", f"{i}/3"), stdout=subprocess.PIPE)
        for i in (1, 2)
    ]
    capsys.readouterr()
    code = run_preprocessing(
        config, data, sharded, workers=0, progress=False, shard=parse_shard("0/3")
    )
    outputs = [capsys.readouterr().out]
    outputs += [process.communicate(timeout=300)[0].decode() for process in processes]
    assert [code] + [process.returncode for process in processes] == [0, 0, 0], outputs
    # the same entries and chain record, byte for byte
    assert _entries(sharded) == _entries(reference)
    assert not [p.name for p in sharded.iterdir() if p.name.startswith(".")]
    # each shard did its share (by the hash of the id) and wrote its own summary
    for index, expected in enumerate([["s1", "s4"], ["s2"], ["s0", "s3", "s5"]]):
        summary = json.loads((sharded / f"preprocess_summary.shard-{index}-of-3.json").read_text())
        assert summary["total"] == summary["cached"] == len(expected), summary
        assert summary["shard"] == f"{index}/3" and summary["failed"] == 0
        assert f"{len(expected)} video(s) preprocessed" in outputs[index]
        assert f"of {len(expected)} in shard {index}/3" in outputs[index]
    assert not (sharded / "preprocess_summary.json").exists()


COUNTER_PLUGIN = """\
import os, time
from pathlib import Path
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

@TRANSFORMS.register_module(force=True)
class CountVideos(BaseTransform):
    # Logs every video this process preprocesses. With GM_HOLD set, the process says it holds
    # its first video (the file 'holding') and keeps it until the file 'released' appears.
    def transform(self, results):
        log = Path(os.environ["GM_COUNT_LOG"])
        with open(log / "processed.log", "a") as stream:
            stream.write(f"{os.getpid()} {Path(results['filename']).stem}\\n")
        if os.environ.get("GM_HOLD") and not (log / "holding").exists():
            (log / "holding").touch()
            deadline = time.monotonic() + 300
            while not (log / "released").exists():
                assert time.monotonic() < deadline, "never released"
                time.sleep(0.01)
        return results
"""


def test_two_runs_at_once_never_process_one_video_twice(tmp_path, config, monkeypatch, capsys):
    """One run as a command, the other in this process, both over every video at once: the
    command holds the claim of its first video until this process has finished the rest."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "counter_plugin.py").write_text(COUNTER_PLUGIN)
    cfg = Config.fromfile(str(config))
    cfg.preprocess_pipeline.insert(1, dict(type="CountVideos"))
    cfg.custom_imports = dict(imports=["gm_plugins", "counter_plugin"], allow_failed_imports=False)
    cfg.dump(str(tmp_path / "counting.py"))
    data, names = tmp_path / "data", [f"s{i}" for i in range(6)]
    _videos(data, names)
    log = tmp_path / "log"
    log.mkdir()
    monkeypatch.setenv("GM_COUNT_LOG", str(log))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.syspath_prepend(str(plugins))
    out = tmp_path / "cache"
    command = _tool(tmp_path / "counting.py", data, out)
    # The command claims a video and holds it while this process runs over all of them.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=dict(os.environ, GM_HOLD="1"))
    deadline = time.monotonic() + 300
    while not (log / "holding").exists():
        assert process.poll() is None and time.monotonic() < deadline, "nothing was held"
        time.sleep(0.01)
    capsys.readouterr()
    code = run(tmp_path / "counting.py", data, out, workers=0)
    (log / "released").touch()
    outputs = [capsys.readouterr().out, process.communicate(timeout=300)[0].decode()]
    assert (code, process.returncode) == (0, 0), outputs
    processed = [line.split() for line in (log / "processed.log").read_text().splitlines()]
    assert sorted(name for _, name in processed) == names  # each video once
    by_process = Counter(pid for pid, _ in processed)
    assert by_process == {str(process.pid): 1, str(os.getpid()): len(names) - 1}
    assert all(is_cached(out, name) for name in names)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no claim left
    assert any("left to other runs that hold their claims" in output for output in outputs)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_check_reports_a_partial_cache_and_writes_nothing(tmp_path, config, capsys):
    data, names = tmp_path / "data", ["done", "gone", "live", "dead", "half", "broken"]
    _videos(data, names[:-1])
    (data / "v/broken.mp4").write_text("not a video")
    write_table(data, [(n, "PR", f"v/{n}.mp4") for n in names])
    out = tmp_path / "cache"
    assert run(config, data, out, workers=0) == 1  # 'broken' fails
    assert not list(out.glob(".claim~*"))  # a failed video's claim is removed too
    for name in names[1:5]:
        shutil.rmtree(out / name)
    host = socket.gethostname()
    claim = dict(host=host, pid=os.getpid(), started=time.time(), token="t")
    (out / ".claim~live").write_text(json.dumps(claim))
    (out / ".claim~dead").write_text(json.dumps(dict(claim, pid=_dead_pid())))
    (out / f".staging~half~{host}~{_dead_pid()}~abcd1234").mkdir()
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    assert run_preprocessing(config, data, out, check=True) == 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == (
        f"check: 1 of 6 video(s) cached, 2 missing, 2 claimed (1 live, 1 stale), "
        f"1 unfinished -> {out}"
    )
    lines = {line.split()[1]: line for line in printed[:-1]}
    assert sorted(lines) == sorted(names[1:])
    assert lines["gone"].startswith("missing ")
    assert lines["live"].startswith("claimed ") and f"live: host {host} pid" in lines["live"]
    assert lines["dead"].startswith("claimed ") and "process gone" in lines["dead"]
    assert lines["half"].startswith("unfinished ") and "killed pid" in lines["half"]
    assert lines["broken"].startswith("missing ") and "last failure" in lines["broken"]
    assert "broken.mp4" in lines["broken"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # read only
    # a share: only its subjects; a rerun fills the gaps and removes what dead runs left
    assert run_preprocessing(config, data, out, check=True, shard=(1, 2)) == 1
    share = [n for n in names if shard_of(n, 2) == 1]
    assert f"of {len(share)} video(s) in shard 1/2" in capsys.readouterr().out
    (out / ".claim~live").unlink()
    (data / "v/broken.mp4").unlink()
    write_table(data, [(n, "PR", f"v/{n}.mp4") for n in names[:-1]])
    assert run(config, data, out, workers=0) == 0
    assert run_preprocessing(config, data, out, check=True) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("check: 5 of 5 video(s) cached")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_check_validates_like_a_run(tmp_path, config, capsys):
    data = tmp_path / "data"
    _videos(data, ["s0"])
    (data / "subjects.csv").write_text("subject_id,label,video\ns0,XX,v/s0.mp4\n")
    assert run_preprocessing(config, data, tmp_path / "cache", check=True) == 2
    assert "line 2" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("value", "message"), [("3/3", "I counts from 0"), ("0/0", "at least 1"), ("a/b", "whole")]
)
def test_bad_shard_values_are_usage_errors(value, message, capsys):
    from gm_plugins.preprocess import preprocess_videos

    with pytest.raises(SystemExit) as caught:
        preprocess_videos.parse_args(["c.py", "--data-root", "d", "--out", "o", "--shard", value])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
