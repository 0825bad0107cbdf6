"""A driver's children end with it: SIGKILL, SIGTERM or Ctrl-C of the driver leaves no child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gm_plugins.utils import processes

#: Bound of every wait below (the waits poll; they return as soon as the state is reached).
TIMEOUT = 30.0


def state(pid: int) -> str:
    """The process's state letter from /proc ('' when it is gone; 'Z' once it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return stat.rpartition(")")[2].split()[0]


def running(pid: int) -> bool:
    return state(pid) not in ("", "Z", "X")


def wait_until(condition, what: str) -> None:
    """Poll ``condition`` until it holds; fail after :data:`TIMEOUT` seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not so after {TIMEOUT:.0f} s")
        time.sleep(0.02)


def read_pids(path: Path, count: int) -> list[int]:
    wait_until(path.is_file, f"{path} written")
    pids = [int(word) for word in path.read_text().split()]
    assert len(pids) == count
    return pids


# The child writes its pid (and its own child's, with a grandchild) atomically, then sleeps.
CHILD = textwrap.dedent(
    """
    import os, subprocess, sys, time
    pids = [os.getpid()]
    if sys.argv[2] == "grandchild":
        pids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid)
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(" ".join(map(str, pids)))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
    """
)
# A driver: runs the child through run_command, as the experiment drivers run training.
DRIVER = textwrap.dedent(
    """
    import signal, sys
    from gm_plugins.utils.processes import run_command
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    run_command([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]], "sleeping child",
                log=sys.argv[4], announce=None)
    """
)


@pytest.fixture
def driver(tmp_path):
    """Start a driver whose child sleeps; yields (driver, pids of its child [and grandchild])."""
    started: list[int] = []

    def start(grandchild: bool = False) -> tuple[subprocess.Popen, list[int]]:
        pid_file = tmp_path / "child.pids"
        kind = "grandchild" if grandchild else "alone"
        parent = subprocess.Popen(
            [sys.executable, "-c", DRIVER, CHILD, str(pid_file), kind, str(tmp_path / "log")],
            cwd=Path(__file__).resolve().parents[2],
        )
        started.append(parent.pid)
        pids = read_pids(pid_file, 2 if grandchild else 1)
        started.extend(pids)
        assert all(running(pid) for pid in pids)
        return parent, pids

    yield start
    for pid in started:  # whatever a failed test left behind
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_child_runs_in_its_own_process_group(tmp_path):
    process = processes.start_command(
        [sys.executable, "-c", "import os; print(os.getpgid(0))"], log=tmp_path / "log"
    )
    processes.wait_command(process, "group", tmp_path / "log")
    assert int((tmp_path / "log").read_text().splitlines()[-1]) == process.pid != os.getpgid(0)


def test_a_sigkilled_driver_takes_its_child_with_it(driver):
    parent, (child,) = driver()
    parent.send_signal(signal.SIGKILL)
    assert parent.wait(TIMEOUT) == -signal.SIGKILL
    wait_until(lambda: not running(child), f"child {child} of the killed driver ended")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_driver_stops_its_childs_whole_process_group(driver, signum):
    parent, (child, grandchild) = driver(grandchild=True)
    parent.send_signal(signum)
    code = parent.wait(TIMEOUT)
    assert code == -signum  # the default action of the signal, after the children
    wait_until(lambda: not running(child), f"child {child} ended")
    wait_until(lambda: not running(grandchild), f"grandchild {grandchild} ended")


def test_no_command_starts_once_the_driver_is_stopping(monkeypatch, tmp_path):
    monkeypatch.setattr(processes, "_stopping", type(processes._stopping)())
    processes._stopping.set()
    with pytest.raises(processes.StoppingError, match="this driver is stopping"):
        processes.run_command([sys.executable, "-c", "pass"], "after the signal", announce=None)
    assert processes.stopping()
