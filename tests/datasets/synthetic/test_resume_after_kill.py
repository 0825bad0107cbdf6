"""A generator run killed by SIGKILL at a random moment, then rerun, gives the same bytes."""

from __future__ import annotations

import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset
from gm_plugins.utils.io import TEMPORARY_SUFFIX, remove_stale_temporaries

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / "tools" / "data" / "make_synthetic_dataset.py"
CONFIG = GeneratorConfig(
    subjects=3,
    seconds=2.0,
    fps=15,
    width=64,
    height=48,
    seed=7,
    prep_subjects=2,
    prep_frames=2,
    empty_scenes=3,
)
ARGUMENTS = ["--subjects", "3", "--seconds", "2", "--fps", "15", "--size", "64x48", "--seed",
             "7", "--prep-subjects", "2", "--prep-frames", "2", "--empty-scenes", "3",
             "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """Every file of an uninterrupted run: relative path -> bytes."""
    out = tmp_path_factory.mktemp("uninterrupted") / "data"
    generate_dataset(out, CONFIG, progress=False)
    return _files(out)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _finished(folder: Path) -> list[Path]:
    """Files under their final names (what a reader would take as done)."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(TEMPORARY_SUFFIX)]


def _arguments(out: Path, workers: int) -> list[str]:
    return ["--out", str(out), *ARGUMENTS, "--workers", str(workers)]


def _load_tool():
    """The command line tools/data/make_synthetic_dataset.py runs."""
    return importlib.import_module("gm_plugins.datasets.synthetic.make_dataset")


def _kill_after(out: Path, workers: int, files: int, delay: float) -> None:
    """Start the generator, SIGKILL it ``delay`` s after ``files`` finished files appeared, and
    return once every process of the run (its workers too) has ended."""
    command = [sys.executable, str(TOOL), *_arguments(out, workers)]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(_finished(out)) < files:
            assert process.poll() is None, "the generator ended before it could be killed"
            assert time.monotonic() < deadline, "the generator wrote too few files in 300 s"
            time.sleep(0.002)
        time.sleep(delay)
        assert process.poll() is None, "the generator ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)  # the main process only: workers must follow it
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    _wait_until_group_ended(process.pid)


def _wait_until_group_ended(group: int) -> None:
    """Return once no process of the process group is left: workers must follow their parent,
    so nothing can write after this."""
    deadline = time.monotonic() + 60
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "a worker outlived the killed generator by 60 s"
        time.sleep(0.01)


@pytest.mark.parametrize(("workers", "seed"), [(1, 0), pytest.param(2, 1, marks=pytest.mark.slow)])
def test_rerun_after_sigkill_is_byte_identical(tmp_path, reference, workers, seed):
    # The last files are the tables and annotations, written in a burst: stop before them.
    draw = random.Random(seed)
    files, delay = draw.randint(1, len(reference) - 6), draw.uniform(0.0, 0.05)
    out = tmp_path / "data"
    _kill_after(out, workers, files, delay)  # returns when no process of the run is left
    partial = _files(out)
    context = f"killed after {files} files + {delay:.3f} s"
    assert json.loads(partial.pop("meta.json"))["complete"] is False, context
    for name, data in partial.items():
        if not Path(name).name.endswith(TEMPORARY_SUFFIX):  # whatever looks finished is
            assert data == reference[name], f"{name} ({context})"
    assert not set(partial) >= set(reference) - {"meta.json"}, f"nothing was left ({context})"

    assert _load_tool().main(_arguments(out, workers)) == 0  # the same command, run again
    result = _files(out)
    assert sorted(result) == sorted(reference), context  # no leftover temporaries either
    different = [name for name in reference if result[name] != reference[name]]
    assert not different, f"{different} differ ({context})"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="tells zombies by /proc (Linux)")
def test_only_temporaries_of_ended_processes_are_removed(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # ends, not reaped yet
    deadline = time.monotonic() + 60
    while Path(f"/proc/{zombie.pid}/stat").exists() and time.monotonic() < deadline:
        if Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.01)
    folder = tmp_path / "videos"
    folder.mkdir()
    names = {pid: folder / f".s0000.mp4.{pid}{TEMPORARY_SUFFIX}"
             for pid in (os.getpid(), ended.pid, zombie.pid)}  # fmt: skip
    for path in names.values():
        path.write_bytes(b"partial")
    (folder / "s0001.mp4").write_bytes(b"done")
    removed = remove_stale_temporaries(tmp_path)
    zombie.wait()
    assert sorted(removed) == sorted([names[ended.pid], names[zombie.pid]])
    assert names[os.getpid()].exists() and (folder / "s0001.mp4").exists()
