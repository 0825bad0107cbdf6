"""tools/data/make_synthetic_dataset.py --shard I/N: shares made at once give one run's files."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
from gm_plugins.utils.io import TEMPORARY_SUFFIX
from gm_plugins.utils.sharding import STALE_SECONDS, select_shard

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "data" / "make_synthetic_dataset.py"
CONFIG = GeneratorConfig(
    subjects=6,
    seconds=1.0,
    fps=10,
    width=64,
    height=48,
    seed=3,
    prep_subjects=3,
    prep_frames=2,
    empty_scenes=2,
)
ARGUMENTS = ["--subjects", "6", "--seconds", "1", "--fps", "10", "--size", "64x48",
             "--seed", "3", "--prep-subjects", "3", "--prep-frames", "2", "--empty-scenes", "2",
             "--quiet"]  # fmt: skip
IDS = [f"s{i:04d}" for i in range(6)] + [f"p{i:04d}" for i in range(3)] + ["e0000", "e0001"]


def _load_tool():
    """The command line tools/data/make_synthetic_dataset.py runs."""
    return importlib.import_module("gm_plugins.datasets.synthetic.make_dataset")


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    """sha256 of every file of a one-process run."""
    out = tmp_path_factory.mktemp("one_process") / "data"
    generate_dataset(out, CONFIG, progress=False)
    return _hashes(out)


def test_every_share_has_subjects():  # what the tests below rely on
    assert all(select_shard(IDS, (index, 3)) for index in range(3))


def test_three_shards_at_once_make_the_files_of_one_run(tmp_path, reference, capsys):
    out = tmp_path / "data"
    processes = [
        subprocess.Popen(
            [sys.executable, str(TOOL), "--out", str(out), *ARGUMENTS, "--shard", f"{i}/3"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(3)
    ]
    outputs = [process.communicate(timeout=300)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    result = _hashes(out)
    assert sorted(result) == sorted(reference)  # no temporaries left, nothing missing
    assert [name for name in reference if result[name] != reference[name]] == []
    assert any(output.startswith("wrote ") for output in outputs), outputs  # one completed it
    tool = _load_tool()
    assert tool.main(["--out", str(out), *ARGUMENTS, "--check"]) == 0
    assert capsys.readouterr().out.strip() == f"check: 11 of 11 subject(s) done; {out} is complete"


def test_a_share_alone_leaves_the_tables_to_the_run_that_completes_the_dataset(
    tmp_path, reference, capsys
):
    out = tmp_path / "data"
    tool = _load_tool()
    command = ["--out", str(out), *ARGUMENTS]
    assert tool.main([*command, "--shard", "0/3"]) == 0
    assert "shard 0/3 of" in capsys.readouterr().out
    share = select_shard(IDS, (0, 3))
    assert json.loads((out / "meta.json").read_text())["complete"] is False
    assert not (out / "subjects.csv").exists()
    assert not (out / "mmpose/annotations/train.json").exists()
    assert tool.main([*command, "--check", "--shard", "0/3"]) == 0
    assert tool.main([*command, "--check", "--shard", "1/3"]) == 1
    assert tool.main([*command, "--check"]) == 1
    printed = capsys.readouterr().out.splitlines()
    missing = [line.split()[1] for line in printed if line.startswith("missing ")]
    assert missing == select_shard(IDS, (1, 3)) + [i for i in IDS if i not in share]
    assert printed[-1] == f"check: {len(share)} of 11 subject(s) done; {out} is not complete"
    assert tool.main([*command, "--shard", "1/3"]) == 0
    assert tool.main([*command, "--shard", "2/3"]) == 0  # the last share writes the tables
    assert _hashes(out) == reference
    assert tool.main([*command, "--shard", "2/3"]) == 0  # a rerun changes nothing
    assert _hashes(out) == reference


@pytest.mark.parametrize(
    ("value", "message"), [("3/3", "I counts from 0"), ("0/0", "at least 1"), ("a/b", "whole")]
)
def test_bad_shard_values_are_usage_errors(tmp_path, value, message, capsys):
    with pytest.raises(SystemExit) as caught:
        _load_tool().main(["--out", str(tmp_path / "x"), "--shard", value])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_folder_holding_only_a_temporary_is_another_shard_starting(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / f".meta.json.{os.getpid()}-abcd{TEMPORARY_SUFFIX}").write_text("{")
    small = GeneratorConfig(
        subjects=1, seconds=0.5, fps=10, width=32, height=32, prep_subjects=0, prep_frames=1
    )
    assert generate_dataset(out, small, progress=False, shard=(0, 1))["complete"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no meta\.json"):
        generate_dataset(tmp_path / "other", small, progress=False, shard=(0, 2))


def test_a_shard_removes_only_temporaries_untouched_for_long(tmp_path):
    """Another machine's writer has a process id that means nothing here: only age tells."""
    small = GeneratorConfig(
        subjects=1, seconds=0.5, fps=10, width=32, height=32, prep_subjects=0, prep_frames=1
    )
    out = tmp_path / "data"
    generate_dataset(out, small, progress=False)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    fresh = out / "videos" / f".s0001.mp4.{ended.pid}-aaaa{TEMPORARY_SUFFIX}"
    old = out / "videos" / f".s0002.mp4.{ended.pid}-bbbb{TEMPORARY_SUFFIX}"
    for path in (fresh, old):
        path.write_bytes(b"partial")
    long_ago = time.time() - STALE_SECONDS - 10
    os.utime(old, (long_ago, long_ago))
    generate_dataset(out, small, progress=False, shard=(0, 2))
    assert fresh.exists() and not old.exists()
    generate_dataset(out, small, progress=False)  # unsharded: every dead process's temporaries
    assert not fresh.exists()
