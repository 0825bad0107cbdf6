"""Run tools in a subprocess, watch their logs, and SIGKILL them (with their children) mid-run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.runner_configs import REPO_ROOT, tiny_demo_config


def resumable_demo_config(path: Path, data: Path, cache: Path, max_epochs: int = 3) -> Path:
    """The tiny demo config (tests/runner_configs.py) with what resuming must get right: a
    loader worker that persists across epochs, jittered windows, random flips, dropout and a
    cosine schedule over ``max_epochs`` epochs."""
    tiny_demo_config(path, data, cache)
    with open(path, "a") as stream:
        stream.write(
            "train_dataloader = dict(train_dataloader, num_workers=1, persistent_workers=True)\n"
            f"train_cfg = dict(max_epochs={max_epochs})\n"
            "param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, "
            f"end={max_epochs}, eta_min_ratio=0.01, convert_to_iter_based=True)]\n"
            "model = dict(cls_head=dict(dropout_ratio=0.5))\n"
        )
    return path


def start(*args: str, log: Path) -> subprocess.Popen:
    """``python ARGS`` in the repository root, in its own process group, output to ``log``.

    One torch thread each: two runs side by side on two busy cores with two threads each
    spend most of their time in OpenMP's waits (a tiny forward pass: 0.03 s -> 0.8 s)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "ab") as stream:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def finish(process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Wait for ``process``; fail with the log's tail if it fails."""
    code = process.wait(timeout=timeout)
    assert code == 0, f"exit code {code}; {log}:\n{log.read_text()[-4000:]}"


def kill_when(
    process: subprocess.Popen, watched: Path, pattern: str, timeout: float = 300
) -> re.Match:
    """SIGKILL the process group of ``process`` as soon as ``pattern`` appears in what is
    appended to ``watched`` (a log file) from now on; fails if the process ends first."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    seen = watched.stat().st_size if watched.exists() else 0  # only what is written from now
    while True:
        match = regex.search(read_from(watched, seen)) if watched.exists() else None
        if match:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return match
        assert process.poll() is None, f"exited ({process.returncode}) before {pattern!r}"
        assert time.monotonic() < deadline, f"{pattern!r} did not appear in {watched}"
        time.sleep(0.01)


def read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as stream:
        stream.seek(offset)
        return stream.read().decode(errors="replace")


def train_iteration(epoch: int, iteration: int) -> str:
    """A regex for mmengine's log line of a training iteration, e.g. ``Epoch(train) [2][3/8]``."""
    return rf"Epoch\(train\)\s*\[{epoch}\]\[\s*{iteration}/\d+\]"
