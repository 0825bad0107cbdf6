"""gm_plugins.utils.locking: one driver per work folder, across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gm_plugins.utils.locking import LOCK_NAME, WorkDirInUseError, lock_work_dir, read_owner

REPO = Path(__file__).resolve().parents[2]
#: Takes the folder's lock, says so, and holds it until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from gm_plugins.utils.locking import lock_work_dir
    lock_work_dir(sys.argv[1], command="holder of the folder")
    print("held", flush=True)
    sys.stdin.read()
    """
)
#: Tries the folder's lock once and prints what happened.
TRY = textwrap.dedent(
    """
    import sys
    from gm_plugins.utils.locking import WorkDirInUseError, lock_work_dir
    try:
        lock_work_dir(sys.argv[1])
    except WorkDirInUseError as error:
        print("refused:", error)
    else:
        print("taken")
    """
)

#: Runs ``python -c ARGS`` as its own child: a process that is not a child of the test.
INDIRECT = "import subprocess, sys; subprocess.run([sys.executable, '-c', *sys.argv[1:]])"


def python(code: str, *args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, **kwargs)  # fmt: skip


@pytest.fixture
def holder(tmp_path):
    """Another process holding ``tmp_path / 'work'``."""
    process = python(HOLDER, tmp_path / "work", stdin=subprocess.PIPE)
    assert process.stdout.readline() == "held\n"  # the lock is taken once this line comes
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_second_driver_is_refused_with_the_folder_and_the_holders_pid(tmp_path, holder):
    work = tmp_path / "work"
    with pytest.raises(WorkDirInUseError) as refused:
        lock_work_dir(work)
    message = str(refused.value)
    assert str(work) in message and f"process {holder.pid} (holder of the folder)" in message
    assert refused.value.owner["pid"] == holder.pid


def test_the_lock_of_a_killed_driver_is_taken_over(tmp_path, holder):
    holder.kill()  # SIGKILL: the holder cannot clean up; the kernel frees its lock
    holder.wait()
    assert read_owner(tmp_path / "work")["pid"] == holder.pid  # its file is still there
    with lock_work_dir(tmp_path / "work", command="the next driver") as lock:
        assert lock.owner["pid"] == os.getpid()
        owner = json.loads((tmp_path / "work" / LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["command"] == "the next driver"


def test_a_released_lock_lets_another_process_in(tmp_path):
    work = tmp_path / "work"
    first = lock_work_dir(work)
    again = lock_work_dir(work)  # the same process: counted, not refused
    assert again is first and first.count == 2
    first.release()
    assert "refused" in python(INDIRECT, TRY, work).communicate()[0]
    again.release()
    assert python(INDIRECT, TRY, work).communicate()[0] == "taken\n"


def test_a_child_of_the_holder_works_in_its_folder_but_not_its_grandchild(tmp_path):
    with lock_work_dir(tmp_path / "work"):
        assert python(TRY, tmp_path / "work").communicate()[0] == "taken\n"
        assert "refused" in python(INDIRECT, TRY, tmp_path / "work").communicate()[0]
